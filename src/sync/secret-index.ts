/**
 * Which sources read which Secrets (namespace-scoped), so one Secret change re-syncs every source that
 * uses it. Filled by the reconciler, which is the one place that knows a source's targets.
 */
export class SecretIndex {
  private readonly readersBySecret = new Map<string, Set<string>>();
  private readonly secretsBySource = new Map<string, string[]>();

  set(sourceKey: string, namespace: string, secretNames: string[]): void {
    this.forget(sourceKey);
    const keys = secretNames.map((name) => `${namespace}/${name}`);
    this.secretsBySource.set(sourceKey, keys);
    for (const key of keys) {
      let readers = this.readersBySecret.get(key);
      if (!readers) this.readersBySecret.set(key, (readers = new Set()));
      readers.add(sourceKey);
    }
  }

  forget(sourceKey: string): void {
    for (const key of this.secretsBySource.get(sourceKey) ?? []) {
      const readers = this.readersBySecret.get(key);
      readers?.delete(sourceKey);
      if (readers?.size === 0) this.readersBySecret.delete(key);
    }
    this.secretsBySource.delete(sourceKey);
  }

  readersOf(namespace: string, secretName: string): string[] {
    return [...(this.readersBySecret.get(`${namespace}/${secretName}`) ?? [])];
  }
}
