// The public API of @plugboard/sdk. Keep this a curated list of re-exports.
export { SDK_VERSION } from './version';

export {
  ERROR_CODES,
  ALL_ERROR_CODES,
  PlugboardError,
  ConfigError,
  PluginError,
  DeliveryError,
  WebhookError,
  StoreError,
  unrecoverable,
  retryAfter,
  retryable,
  serializeError,
  describeErrorChain,
} from './errors';
export type {
  ErrorCode,
  ConfigErrorCode,
  PluginErrorCode,
  DeliveryErrorCode,
  WebhookErrorCode,
  StoreErrorCode,
  HttpErrorCode,
  SsoErrorCode,
  ConfigErrorDetails,
  PluginErrorDetails,
  DeliveryErrorOptions,
  PlugboardErrorOptions,
  SerializedError,
} from './errors';

export type {
  Notification,
  NotificationProject,
  NotificationGroup,
  NotificationEvent,
  NotificationMetricAlert,
  NotificationComment,
  NotificationActor,
  NotificationLinks,
  SentryResource,
  SentryLevel,
  NotificationAssignee,
  NotificationInstallation,
  ParseResult,
  ParseFailureReason,
  NotificationDigest,
} from './model';
export { describeDigest, humanDuration } from './model';
export { defang } from './text';

export { loadSample, SAMPLE_KINDS, compactSentryJson } from './samples';
export type { LoadSampleOptions, Sample } from './samples';

export { parseSentryWebhook, parseLegacyWebhook, SUPPORTED_KINDS } from './parse';
export type { SentryWebhookInput } from './parse';

export { verifySentrySignature, signSentryBody } from './signature';
export type { SignatureCheck } from './signature';

export { Plugin, NotificationPlugin, PLUGIN_BRAND, readBrand } from './plugin';
export type {
  PluginKind,
  PluginBrand,
  ConfigField,
  ConfigFieldType,
  ConfigFieldChoice,
  PluginConfig,
  PluginLogger,
  PluginStore,
  RateLimiter,
  NotifyContext,
  UserSettings,
  UserNotificationOptions,
  TestConfigurationResult,
  TargetRateLimit,
} from './plugin';

export { validatePluginConfig, maskSecrets } from './config-fields';
export type { FieldProblem } from './config-fields';

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
