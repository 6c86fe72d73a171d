// The chaos run's workload: Secrets that keep getting new values, annotated Deployments that use them, are
// created, move their Vault path (a new path annotation) and are deleted, in a few namespaces. Every change is
// made with one API call at a time and written into the ledger right after it succeeded, so the ledger's order
// is Kubernetes' order. Paths are never reused (each move is to a new generation, each Deployment a new name).
import type { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { ChaosLedger } from './chaos-ledger.js';
import { deploymentUsing, mergePatch } from './objects.js';

const SECRETS_PER_NAMESPACE = 4;
const DEPLOYMENTS_PER_NAMESPACE = { initial: 3, max: 4 };

interface LiveDeployment {
  namespace: string;
  name: string;
  generation: number;
  secrets: string[];
}

const pathsOf = (d: LiveDeployment) => d.secrets.map((s) => `${d.namespace}/${d.name}-g${d.generation}/${s}`);
const annotationsOf = (d: LiveDeployment) => ({ 'vault-sync.io/path': `secret/${d.namespace}/${d.name}-g${d.generation}` });
const byName = (a: LiveDeployment, b: LiveDeployment) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export class ChaosWorkload {
  private readonly deployments = new Map<string, LiveDeployment>();
  /** Deleted Deployments (`namespace/name`): each must be gone once its finalizer is released. */
  readonly deleted: string[] = [];
  private counter = 0;
  actions = 0;

  constructor(
    private readonly clients: { core: CoreV1Api; apps: AppsV1Api },
    private readonly ledger: ChaosLedger,
    readonly namespaces: readonly string[],
    private readonly random: () => number,
  ) {}

  /** The Secrets with a first value each, and the first Deployments. */
  async setUp(): Promise<void> {
    for (const namespace of this.namespaces) {
      for (let i = 0; i < SECRETS_PER_NAMESPACE; i++) {
        const name = `s${i}`;
        const value = this.ledger.nextValue(`${namespace}/${name}`);
        await this.clients.core.createNamespacedSecret({ namespace, body: { metadata: { name, namespace }, stringData: { value } } });
      }
      for (let i = 0; i < DEPLOYMENTS_PER_NAMESPACE.initial; i++) await this.create(namespace);
    }
  }

  /** One change: mostly a new Secret value; sometimes a move, a deletion or a new Deployment. */
  async step(): Promise<void> {
    const roll = this.random();
    const namespace = this.pick(this.namespaces);
    const inNamespace = [...this.deployments.values()].filter((d) => d.namespace === namespace).sort(byName);
    if (roll < 0.1 && inNamespace.length > 0) await this.move(this.pick(inNamespace));
    else if (roll < 0.17 && inNamespace.length > 1) await this.delete(this.pick(inNamespace));
    else if (roll < 0.3 && inNamespace.length < DEPLOYMENTS_PER_NAMESPACE.max) await this.create(namespace);
    else await this.setValue(namespace, `s${Math.floor(this.random() * SECRETS_PER_NAMESPACE)}`);
    this.actions++;
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)];
  }

  private async setValue(namespace: string, secret: string): Promise<void> {
    const value = this.ledger.nextValue(`${namespace}/${secret}`);
    try {
      await this.clients.core.patchNamespacedSecret({ namespace, name: secret, body: { stringData: { value } } }, mergePatch);
    } catch (error) {
      this.ledger.forgetLatest(`${namespace}/${secret}`, value);
      throw error;
    }
  }

  private async create(namespace: string): Promise<void> {
    const names = Array.from({ length: SECRETS_PER_NAMESPACE }, (_, i) => `s${i}`);
    const first = this.pick(names);
    const secrets = this.random() < 0.5 ? [first] : [...new Set([first, this.pick(names)])].sort();
    const d: LiveDeployment = { namespace, name: `d${this.counter++}`, generation: 0, secrets };
    await this.clients.apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, d.name, annotationsOf(d), secrets) });
    this.deployments.set(`${namespace}/${d.name}`, d);
    for (const [i, path] of pathsOf(d).entries()) this.ledger.startTarget(path, namespace, d.name, `${namespace}/${secrets[i]}`);
  }

  private async move(d: LiveDeployment): Promise<void> {
    const moved = { ...d, generation: d.generation + 1 };
    await this.clients.apps.patchNamespacedDeployment({ namespace: d.namespace, name: d.name, body: { metadata: { annotations: annotationsOf(moved) } } }, mergePatch);
    this.deployments.set(`${d.namespace}/${d.name}`, moved);
    for (const path of pathsOf(d)) this.ledger.endTarget(path, 'moved');
    for (const [i, path] of pathsOf(moved).entries()) this.ledger.startTarget(path, d.namespace, d.name, `${d.namespace}/${d.secrets[i]}`);
  }

  private async delete(d: LiveDeployment): Promise<void> {
    await this.clients.apps.deleteNamespacedDeployment({ namespace: d.namespace, name: d.name });
    this.deployments.delete(`${d.namespace}/${d.name}`);
    this.deleted.push(`${d.namespace}/${d.name}`);
    for (const path of pathsOf(d)) this.ledger.endTarget(path, 'deleted');
  }
}
