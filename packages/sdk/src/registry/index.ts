export { PluginRegistry, MANIFEST_FIELD, ENTRY_POINT_GROUPS } from './registry';
export type {
  RegistryOptions,
  PluginManifest,
  EntryPointGroup,
  DiscoveredPlugin,
  PluginStatus,
  BuiltinPlugin,
  RegisterMeta,
} from './registry';
