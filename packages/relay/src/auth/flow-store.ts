import type { FlowStore } from '@plugboard/sso';
import type { Store } from '../store/types';

/**
 * Sign-in flows in the relay's store, so that a flow started on one replica
 * can finish on another (the identity provider sends the browser back to
 * whichever replica the load balancer picks).
 */
export const SSO_FLOWS_NAMESPACE = 'sso-flows';

export function storeFlowStore(store: Store): FlowStore {
  return {
    get: (id) => store.kvGet(SSO_FLOWS_NAMESPACE, id),
    set: (id, value, ttlSeconds) => store.kvSet(SSO_FLOWS_NAMESPACE, id, value, ttlSeconds),
    delete: (id) => store.kvDelete(SSO_FLOWS_NAMESPACE, id),
    setIfAbsent: (id, value, ttlSeconds) =>
      store.kvSetIfAbsent(SSO_FLOWS_NAMESPACE, id, value, ttlSeconds),
  };
}
