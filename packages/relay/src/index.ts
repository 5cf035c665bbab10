// The public API of @plugboard/relay, for embedding the relay in code.
export { Relay, builtinPlugins, createRegistry, resolveInstances } from './relay';
export type { RelayOptions } from './relay';
export { loadConfig, parseListen, maskValue, ENV_SETTINGS } from './config/load';
export type { LoadedConfig, LoadOptions, ListenAddress } from './config/load';
export { configSchema } from './config/schema';
export type { RelayConfig, RouteConfig, InstanceConfig, RawConfig } from './config/schema';
export { SqliteStore } from './store/sqlite';
export type { SqliteStoreOptions } from './store/sqlite';
export type * from './store/types';
export { Dispatcher, backoffDelay } from './dispatch/dispatcher';
export type { DispatchInstance, DispatcherOptions, BackoffOptions } from './dispatch/dispatcher';
export { matchRoutes, explainRoute } from './routing';
export { createApp } from './server/app';
export { createLogger } from './logger';
export { LogNotifier, renderNotificationLine } from './builtin/log-notifier';
export { RELAY_VERSION } from './version';
