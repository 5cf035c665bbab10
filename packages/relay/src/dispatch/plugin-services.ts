import type { PluginStore, RateLimiter } from '@plugboard/sdk';
import type { Store } from '../store/types';

/** The store's key-value space, namespaced per plugin slug. */
export function pluginStore(store: Store, namespace: string): PluginStore {
  const ns = `plugin:${namespace}`;
  return {
    get: async <T>(key: string) => (await store.kvGet(ns, key)) as T | undefined,
    set: (key, value, options) => store.kvSet(ns, key, value, options?.ttlSeconds),
    setIfAbsent: (key, value, options) => store.kvSetIfAbsent(ns, key, value, options?.ttlSeconds),
    delete: (key) => store.kvDelete(ns, key),
  };
}

/** Fixed-window limiter kept in the store, so it holds across restarts and replicas. */
export function storeRateLimiter(store: Store): RateLimiter {
  return {
    async isLimited(key, limit, windowSeconds) {
      const n = await store.rateHit(key, windowSeconds);
      return n > limit;
    },
  };
}
