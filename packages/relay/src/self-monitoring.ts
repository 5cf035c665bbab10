import type { LoadedConfig } from './config/load';
import type { Logger } from './logger';
import { scrub } from './logger';
import { RELAY_VERSION } from './version';

export interface SelfMonitor {
  capture(err: unknown, context?: Record<string, string>): void;
  close(): Promise<void>;
}

/**
 * With `SENTRY_DSN` set, the relay reports its own unexpected errors (bugs,
 * not delivery failures) through @sentry/node. Loaded only then, and with
 * every known secret scrubbed from what is sent.
 */
export function initSelfMonitoring(loaded: LoadedConfig, logger: Logger): SelfMonitor {
  const dsn = loaded.config.sentryDsn;
  if (!dsn) return { capture: () => undefined, close: async () => undefined };
  const Sentry = require('@sentry/node') as typeof import('@sentry/node');
  const secrets = loaded.secrets;
  Sentry.init({
    dsn,
    release: `plugboard-relay@${RELAY_VERSION}`,
    // Errors only: no tracing, no automatic instrumentation of other modules.
    defaultIntegrations: false,
    tracesSampleRate: 0,
    sendDefaultPii: false,
    beforeSend(event) {
      return scrub(event, secrets) as typeof event;
    },
  });
  logger.info('self-monitoring: reporting unexpected errors to Sentry');
  return {
    capture(err, context) {
      Sentry.captureException(err, context ? { tags: context } : undefined);
    },
    async close() {
      await Sentry.close(2000);
    },
  };
}
