import {
  ConfigError,
  PluginError,
  validatePluginConfig,
  type PluginRegistry,
} from '@plugboard/sdk';
import { BUILTIN_SSO_PROVIDERS, SsoError, type SsoProvider } from '@plugboard/sso';
import type { LoadedConfig } from '../config/load';

/** A provider of `sso.providers`, configured and ready for the SSO router. */
export interface ConfiguredSsoProvider {
  id: string;
  label: string;
  provider: SsoProvider;
}

/**
 * Every `sso.providers` entry, configured by its provider: the builtins
 * (`oidc`, `oauth2`, `dummy`) or an installed package's `plugboard.sso`
 * entry point. Problems stop start-up with errors naming the entry, the way
 * route instances do; secret fields join the values scrubbed from logs.
 */
export async function resolveSsoProviders(
  loaded: LoadedConfig,
  registry: PluginRegistry,
  builtins: readonly SsoProvider[] = BUILTIN_SSO_PROVIDERS,
): Promise<ConfiguredSsoProvider[]> {
  const sso = loaded.config.sso;
  const out: ConfiguredSsoProvider[] = [];
  const problems: string[] = [];
  for (const [i, entry] of sso.providers.entries()) {
    const where = `sso.providers[${i}] (${entry.id})`;
    if (entry.type === 'dummy' && !sso.allowDummy) {
      // Anyone can sign in as anyone through it: never by accident.
      throw new ConfigError(
        'PB_CONFIG_INVALID',
        `${where}: the dummy provider lets anyone sign in as anyone; it is refused unless ` +
          'sso.allowDummy is true (for development and tests only)',
        { path: `sso.providers[${i}].type`, value: entry.type },
        {
          cause: new SsoError('PB_SSO_PROVIDER_NOT_ALLOWED', {
            message: 'the dummy provider is not allowed (sso.allowDummy is false)',
          }),
        },
      );
    }
    const base = await findProvider(entry.type, where, i, registry, builtins);
    const given = entry.type === 'dummy' ? { ...entry.config, allow: true } : entry.config;
    const fields = base.configFields();
    const { config, problems: fieldProblems } = validatePluginConfig(fields, given);
    for (const p of fieldProblems) problems.push(`${where}: config.${p.field} ${p.problem}`);
    if (fieldProblems.length > 0) continue;
    for (const f of fields) {
      const v = config[f.name];
      if (f.type === 'secret' && typeof v === 'string' && v.length > 0) loaded.secrets.add(v);
    }
    const extra = await base.validateConfig(config);
    for (const m of extra) problems.push(`${where}: ${m}`);
    if (extra.length > 0) continue;
    let provider: SsoProvider;
    try {
      provider = base.configure(config);
    } catch (err) {
      throw new ConfigError(
        'PB_CONFIG_FIELD_INVALID',
        `${where}: the ${entry.type} provider refused its configuration: ${(err as Error).message}`,
        { path: `sso.providers[${i}].config` },
        { cause: err },
      );
    }
    out.push({ id: entry.id, label: entry.label ?? base.title, provider });
  }
  if (problems.length > 0) {
    throw new ConfigError(
      'PB_CONFIG_FIELD_INVALID',
      `invalid SSO provider configuration:\n  ${problems.join('\n  ')}`,
    );
  }
  return out;
}

async function findProvider(
  type: string,
  where: string,
  index: number,
  registry: PluginRegistry,
  builtins: readonly SsoProvider[],
): Promise<SsoProvider> {
  const builtin = builtins.find((b) => b.slug === type);
  if (builtin) return builtin;
  try {
    // validateExport checked the SSO contract; the class may come from
    // another copy of the package, hence the structural cast.
    return (await registry.getPlugin('plugboard.sso', type)) as SsoProvider;
  } catch (err) {
    const known = [
      ...builtins.map((b) => b.slug),
      ...registry
        .list()
        .filter((d) => d.group === 'plugboard.sso' && d.scope !== 'package')
        .map((d) => d.name),
    ];
    const notFound = err instanceof PluginError && err.code === 'PB_PLUGIN_NOT_FOUND';
    throw new ConfigError(
      notFound ? 'PB_CONFIG_PLUGIN_UNKNOWN' : 'PB_CONFIG_INVALID',
      notFound
        ? `${where}: no SSO provider "${type}"; known: ${known.join(', ') || 'none'}. ` +
            "Install the package and declare it in the app's dependencies or plugins.packages."
        : `${where}: the SSO provider "${type}" failed to load: ${(err as Error).message}`,
      { path: `sso.providers[${index}].type`, value: type },
      { cause: err },
    );
  }
}
