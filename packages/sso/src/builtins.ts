import type { SsoProvider } from './provider';
import { DummyProvider } from './providers/dummy';
import { OAuth2Provider } from './providers/oauth2';
import { OidcProvider } from './providers/oidc';

/**
 * Unconfigured instances of the providers this package ships, for a host's
 * registry (entry-point group `plugboard.sso`). Frozen: configure() returns
 * new instances.
 */
export const BUILTIN_SSO_PROVIDERS: readonly SsoProvider[] = Object.freeze(
  [new OidcProvider(), new OAuth2Provider(), new DummyProvider()].map((provider) => {
    Object.freeze(provider);
    return provider;
  }),
);
