// The chaos test's own account of what Kubernetes asked for: every value each Secret was given (each a unique
// canary, so a value found anywhere can be traced to the Secret and the moment it was set), and every Vault
// path a Deployment pointed at, from when to when, and why it stopped (moved or deleted). Pure bookkeeping:
// the harness feeds it in the order its own API calls returned; the checks read it at the end.
//
// Order is logical, not wall-clock: the workload makes one API call at a time, so "the value a Secret held
// when a path became a target" is simply the last value set before that call.

export interface Target {
  /** Key below the KV mount: `<namespace>/<deployment>-g<generation>/<secret>`. Never reused. */
  path: string;
  namespace: string;
  deployment: string;
  /** `<namespace>/<name>` of the Secret whose value this path must hold. */
  secret: string;
  /** Index (in the Secret's values) of the value it held when this path became a target. */
  indexAtStart: number;
  /** Set when the path stopped being a target: its data must then be gone from Vault. */
  endedBy?: 'moved' | 'deleted';
}

export interface ValueRef {
  secret: string;
  /** 0-based position among the values of that Secret. */
  index: number;
}

export class ChaosLedger {
  private readonly valuesBySecret = new Map<string, string[]>();
  private readonly refByValue = new Map<string, ValueRef>();
  private readonly targetsByPath = new Map<string, Target>();
  private counter = 0;

  /**
   * @param canaryPrefix shared by every value of this run (searched for in logs, Events and statuses): pick
   *   one that appears nowhere else (a random run id).
   */
  constructor(readonly canaryPrefix: string, private readonly randomHex: () => string) {}

  /** A new unique value for the Secret, recorded as its latest. */
  nextValue(secret: string): string {
    const value = `${this.canaryPrefix}${String(++this.counter).padStart(6, '0')}-${this.randomHex()}`;
    const values = this.valuesBySecret.get(secret) ?? [];
    values.push(value);
    this.valuesBySecret.set(secret, values);
    this.refByValue.set(value, { secret, index: values.length - 1 });
    return value;
  }

  /** Takes back a value whose API call failed (it never reached Kubernetes). Only the latest can be. */
  forgetLatest(secret: string, value: string): void {
    const values = this.valuesBySecret.get(secret);
    if (values?.[values.length - 1] !== value) throw new Error(`ledger: ${value} is not the latest value of ${secret}`);
    values.pop();
    this.refByValue.delete(value);
  }

  startTarget(path: string, namespace: string, deployment: string, secret: string): Target {
    if (this.targetsByPath.has(path)) throw new Error(`ledger: the path ${path} was a target before; paths are never reused`);
    const values = this.valuesBySecret.get(secret);
    if (!values?.length) throw new Error(`ledger: the Secret ${secret} has no value yet`);
    const target: Target = { path, namespace, deployment, secret, indexAtStart: values.length - 1 };
    this.targetsByPath.set(path, target);
    return target;
  }

  endTarget(path: string, endedBy: 'moved' | 'deleted'): void {
    const target = this.targetsByPath.get(path);
    if (!target || target.endedBy) throw new Error(`ledger: the path ${path} is not a live target`);
    target.endedBy = endedBy;
  }

  target(path: string): Target | undefined {
    return this.targetsByPath.get(path);
  }

  /** Sorted by path. */
  targets(): Target[] {
    return [...this.targetsByPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  liveTargets(): Target[] {
    return this.targets().filter((t) => !t.endedBy);
  }

  values(secret: string): readonly string[] {
    return this.valuesBySecret.get(secret) ?? [];
  }

  latest(secret: string): string | undefined {
    const values = this.valuesBySecret.get(secret);
    return values?.[values.length - 1];
  }

  /** Which Secret and which of its values this is; undefined for a value the ledger never set. */
  refOf(value: string): ValueRef | undefined {
    return this.refByValue.get(value);
  }

  get valueCount(): number {
    return this.refByValue.size;
  }

  /** Matches any value of this run: for searching text (logs, Events, statuses) for leaked values. */
  canaryPattern(): RegExp {
    return new RegExp(`${this.canaryPrefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\d{6}`, 'g');
  }
}
