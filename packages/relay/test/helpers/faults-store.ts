import { StoreError } from '@plugboard/sdk';
import type { Store } from '../../src/store/types';

/** What a store write does while a fault is on: the error it throws. */
export type StoreFault = () => Error;

/** The error better-sqlite3 raises when the disk (or the file size limit) is full. */
export function sqliteFull(): Error {
  const cause = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
  return new StoreError('PB_STORE_UNAVAILABLE', `store ingest failed: ${cause.message}`, {
    cause,
  });
}

/** The error better-sqlite3 raises when the data directory turned read-only. */
export function sqliteReadonly(): Error {
  const cause = Object.assign(new Error('attempt to write a readonly database'), {
    code: 'SQLITE_READONLY',
  });
  return new StoreError('PB_STORE_UNAVAILABLE', `store write failed: ${cause.message}`, {
    cause,
  });
}

/** Every method that writes: a full or read-only disk refuses all of them. */
const WRITES: ReadonlySet<keyof Store> = new Set<keyof Store>([
  'ingest',
  'lease',
  'settle',
  'releaseLeases',
  'replay',
  'kvSet',
  'kvSetIfAbsent',
  'kvDelete',
  'flushGroup',
  'rateAcquire',
  'settleMany',
  'rateHit',
  'checkWritable',
]);

export interface FaultyStore {
  store: Store;
  /** Start failing every write with `fault()`; `undefined` clears the fault. */
  setFault(fault: StoreFault | undefined): void;
  /** Writes refused since the store was made, by method. */
  refused: Map<string, number>;
}

/**
 * Wraps a real store so a test can make its writes fail the way a full or
 * read-only disk makes SQLite fail, deterministically and as any user (root
 * ignores file permissions, so chmod cannot simulate this in CI). Reads keep
 * working, as they do on a full disk.
 */
export function faultyStore(inner: Store): FaultyStore {
  let fault: StoreFault | undefined;
  const refused = new Map<string, number>();
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => unknown;
      if (!WRITES.has(prop as keyof Store)) return fn.bind(target);
      return (...args: unknown[]): unknown => {
        if (fault) {
          refused.set(String(prop), (refused.get(String(prop)) ?? 0) + 1);
          return Promise.reject(fault());
        }
        return fn.apply(target, args);
      };
    },
  });
  return {
    store,
    setFault(next) {
      fault = next;
    },
    refused,
  };
}
