import type { FlowStore } from './types';

export interface MemoryFlowStoreOptions {
  /** The clock, ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /** Entries kept at most; expired ones go first, then the oldest. Default 10 000. */
  maxEntries?: number;
}

/**
 * A {@link FlowStore} in this process's memory: for tests and a single
 * process. Several replicas need a shared store (the relay's).
 * Values are kept as JSON, as a real store would, so that nothing is shared
 * by reference between requests.
 */
export class MemoryFlowStore implements FlowStore {
  private readonly entries = new Map<string, { json: string; expiresAt: number }>();
  private readonly now: () => number;
  private readonly maxEntries: number;

  constructor(options: MemoryFlowStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  /** Live entries (for tests). */
  get size(): number {
    this.sweep();
    return this.entries.size;
  }

  async get(id: string): Promise<unknown | undefined> {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(id);
      return undefined;
    }
    return JSON.parse(entry.json) as unknown;
  }

  async set(id: string, value: unknown, ttlSeconds: number): Promise<void> {
    this.put(id, value, ttlSeconds);
  }

  async delete(id: string): Promise<void> {
    this.entries.delete(id);
  }

  async setIfAbsent(id: string, value: unknown, ttlSeconds: number): Promise<boolean> {
    // Check and write with no await in between: atomic in one process.
    const entry = this.entries.get(id);
    if (entry !== undefined && entry.expiresAt > this.now()) return false;
    this.put(id, value, ttlSeconds);
    return true;
  }

  private put(id: string, value: unknown, ttlSeconds: number): void {
    const json = JSON.stringify(value);
    if (json === undefined) throw new TypeError('MemoryFlowStore: the value is not JSON');
    this.entries.delete(id);
    this.entries.set(id, { json, expiresAt: this.now() + ttlSeconds * 1000 });
    if (this.entries.size > this.maxEntries) {
      this.sweep();
      // Map order is insertion order: the first keys are the oldest.
      for (const key of this.entries.keys()) {
        if (this.entries.size <= this.maxEntries) break;
        this.entries.delete(key);
      }
    }
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}
