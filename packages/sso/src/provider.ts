import {
  PLUGIN_BRAND,
  SDK_VERSION,
  validatePluginConfig,
  type ConfigField,
  type PluginBrand,
} from '@plugboard/sdk';
import { SsoError } from './errors';
import type { AuthView, Identity, PipelineState } from './types';

/**
 * Configuration of configured instances, outside the instances themselves:
 * those are frozen, and the unconfigured instance the registry holds has
 * none. (Per copy of this package, as the base class methods are.)
 */
const CONFIGS = new WeakMap<object, Readonly<Record<string, unknown>>>();

/**
 * An SSO provider: Sentry's `Provider` with its `AuthView` pipeline.
 *
 * The registry constructs the class with no arguments and keeps that
 * instance unconfigured; the host calls {@link SsoProvider.configure} once per
 * configured provider and gets a new, frozen instance. Nothing is ever stored
 * on a provider per request: the pipeline's state lives in the flow.
 */
export abstract class SsoProvider<C extends Record<string, unknown> = Record<string, unknown>> {
  static readonly [PLUGIN_BRAND]: PluginBrand = { kind: 'sso', sdkVersion: SDK_VERSION };

  /** Unique id, lowercase, e.g. `oidc`; equals the entry-point name. */
  abstract readonly slug: string;
  /** Human name, e.g. `OpenID Connect`. */
  abstract readonly title: string;
  /** Version of the provider (usually its package version). */
  abstract readonly version: string;
  readonly description: string = '';

  /**
   * Settings of one configured provider, as the SDK's config fields. The
   * host validates them with `validatePluginConfig` at registration, and
   * {@link SsoProvider.configure} validates again.
   */
  configFields(): ConfigField[] {
    return [];
  }

  /**
   * Problems the field checks cannot see (an http:// URL without the
   * local-testing flag, …): `[]` when fine. Field problems themselves are
   * not repeated here; when there are some, the extra checks are skipped.
   */
  async validateConfig(config: Record<string, unknown>): Promise<string[]> {
    const { config: values, problems } = validatePluginConfig(this.configFields(), config);
    return problems.length > 0 ? [] : this.checkConfig(values as C);
  }

  /**
   * Extra synchronous checks shared by {@link SsoProvider.validateConfig} and
   * {@link SsoProvider.configure}; override to add some.
   */
  protected checkConfig(_config: Readonly<C>): string[] {
    return [];
  }

  /**
   * A new, frozen, configured provider. Throws `PB_SSO_CONFIG_INVALID`
   * naming every problem (secret values are never shown). The instance it is
   * called on is not changed.
   */
  configure(config: Record<string, unknown>): this {
    const { config: values, problems } = validatePluginConfig(this.configFields(), config);
    const all =
      problems.length > 0
        ? problems.map((p) => `${p.field} ${p.problem}`)
        : this.checkConfig(values as C);
    if (all.length > 0) {
      throw new SsoError('PB_SSO_CONFIG_INVALID', {
        message: `SSO provider ${this.slug}: invalid configuration: ${all.join('; ')}`,
      });
    }
    const Ctor = this.constructor as new () => this;
    const instance = new Ctor();
    CONFIGS.set(instance, Object.freeze({ ...values }));
    return Object.freeze(instance);
  }

  /** True for an instance returned by {@link SsoProvider.configure}. */
  get isConfigured(): boolean {
    return CONFIGS.has(this);
  }

  /** The validated settings (defaults applied). Throws on an unconfigured instance. */
  protected get config(): Readonly<C> {
    const config = CONFIGS.get(this);
    if (config === undefined) {
      throw new SsoError('PB_SSO_CONFIG_INVALID', {
        message: `SSO provider ${this.slug} is not configured: use the instance configure(config) returns`,
      });
    }
    return config as Readonly<C>;
  }

  /**
   * How the identity provider comes back to the callback: `form_post` when
   * it POSTs from its own site (OIDC `response_mode=form_post`, a company SSO
   * posting an assertion). It decides the flow cookie's SameSite: browsers do
   * not send `SameSite=Lax` cookies on a cross-site POST, so such flows get
   * `SameSite=None; Secure`. Default `query`.
   */
  callbackMethod(): 'query' | 'form_post' {
    return 'query';
  }

  /** The ordered views of a sign-in: Sentry's `get_auth_pipeline()`. */
  abstract getAuthPipeline(): AuthView[];

  /** The views that set the provider up (Sentry's `get_setup_pipeline()`), for hosts that run them. */
  getSetupPipeline?(): AuthView[];

  /** Provider settings from what the setup pipeline bound (Sentry's `build_config(state)`). */
  buildConfig?(state: PipelineState): Record<string, unknown>;

  /**
   * Who signed in, from what the views bound (Sentry's `build_identity(state)`).
   * Throw an SsoError (`PB_SSO_IDENTITY_INVALID`, …) when the state does not say.
   */
  abstract buildIdentity(state: PipelineState): Promise<Identity>;

  /**
   * Checks an identity again later (Sentry's `refresh_identity`): the
   * current identity, or undefined when it is gone. Optional.
   */
  refreshIdentity?(identity: Identity): Promise<Identity | undefined>;
}
