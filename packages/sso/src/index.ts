// The public API of @plugboard/sso. Keep this a curated list of re-exports.
export { SSO_VERSION } from './version';

export { SsoError, isSsoErrorCode } from './errors';
export type { SsoErrorOptions } from './errors';

export { SsoProvider } from './provider';
export type {
  AuthView,
  FlowStore,
  Identity,
  JsonValue,
  PipelineHelper,
  PipelineRequest,
  PipelineState,
  SsoLogger,
  ViewOutcome,
  ViewResponse,
} from './types';

export { createSsoRouter, FLOW_COOKIE, DEFAULT_FLOW_TTL_MS } from './router';
export type { SsoRouterOptions, SsoRouterProvider, SsoSuccess } from './router';
export { MemoryFlowStore } from './flow-store';
export type { MemoryFlowStoreOptions } from './flow-store';

export { constantTimeEqual, escapeHtml, randomToken } from './secure';

export { OidcProvider } from './providers/oidc';
export type { OidcConfig } from './providers/oidc';
export { OAuth2Provider } from './providers/oauth2';
export type { OAuth2Config } from './providers/oauth2';
export { DummyProvider } from './providers/dummy';
export type { DummyConfig } from './providers/dummy';
export { BUILTIN_SSO_PROVIDERS } from './builtins';
