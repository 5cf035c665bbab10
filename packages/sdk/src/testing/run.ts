import { validatePluginConfig } from '../config-fields';
import { ConfigError, DeliveryError, serializeError } from '../errors';
import type { SerializedError } from '../errors';
import type { Notification } from '../model';
import type { NotificationPlugin, PluginConfig } from '../plugin';
import { createTestContext } from './context';
import type { LogEntry, TestContext, TestContextOptions } from './context';

export interface RunNotifierOptions extends TestContextOptions {
  /** Instance configuration as an operator would write it (strings from YAML are fine). */
  config: PluginConfig;
}

export interface RunNotifierResult<C extends PluginConfig = PluginConfig> {
  /**
   * True when `shouldNotify` said yes and `notify` returned. False with no
   * `error`: the plugin declined (not configured, rate limited). False with
   * an `error`: `notify` threw.
   */
  notified: boolean;
  /** What `notify` threw, as the relay would store it with the attempt. */
  error?: SerializedError;
  logs: LogEntry[];
  context: TestContext<C>;
}

/** Past `timeoutMs` the signal is aborted; a notify that ignores it gets this much longer. */
const ABORT_GRACE_MS = 1_000;

/**
 * Run one delivery attempt the way the relay does: validate the instance
 * config against the plugin's fields (and its own `validateConfig`), then
 * `shouldNotify`, then `notify`, aborting the signal after `timeoutMs`.
 *
 * A bad config throws a `ConfigError` listing every problem: that is a
 * mistake in the test. Delivery errors never throw: they come back in
 * `error`, so tests assert on `error.code`.
 */
export async function runNotifier<C extends PluginConfig = PluginConfig>(
  plugin: NotificationPlugin<C>,
  notification: Notification,
  options: RunNotifierOptions,
): Promise<RunNotifierResult<C>> {
  const { config: input, ...contextOptions } = options;
  const config = await validateConfig(plugin, input);
  const context = createTestContext<C>(config as C, contextOptions);
  const result = (notified: boolean, error?: SerializedError): RunNotifierResult<C> => ({
    notified,
    ...(error ? { error } : {}),
    logs: context.logs,
    context,
  });

  if (!(await plugin.shouldNotify(notification, context))) return result(false);

  const timers: NodeJS.Timeout[] = [];
  const deadline = new Promise<never>((_resolve, reject) => {
    timers.push(
      setTimeout(() => {
        context.abortController.abort(
          new DeliveryError('PB_DELIVERY_TIMEOUT', `attempt exceeded ${context.timeoutMs} ms`),
        );
      }, context.timeoutMs),
      setTimeout(() => {
        reject(
          new DeliveryError(
            'PB_DELIVERY_TIMEOUT',
            `${plugin.slug}: notify() did not settle within ${ABORT_GRACE_MS} ms after its ` +
              `signal was aborted at ${context.timeoutMs} ms (does it pass ctx.signal on?)`,
          ),
        );
      }, context.timeoutMs + ABORT_GRACE_MS),
    );
  });
  try {
    await Promise.race([plugin.notify(notification, context), deadline]);
    return result(true);
  } catch (err) {
    return result(false, serializeError(err));
  } finally {
    for (const timer of timers) clearTimeout(timer);
  }
}

async function validateConfig<C extends PluginConfig>(
  plugin: NotificationPlugin<C>,
  input: PluginConfig,
): Promise<PluginConfig> {
  const { config, problems } = validatePluginConfig(plugin.configFields(), input);
  const lines = problems.map((p) => `${p.field}: ${p.problem}`);
  // The plugin's own checks assume the fields are well-typed, so they run second.
  if (lines.length === 0) {
    const extra = await plugin.validateConfig(config as C);
    if (Array.isArray(extra)) lines.push(...extra);
  }
  if (lines.length > 0) {
    throw new ConfigError(
      'PB_CONFIG_INVALID',
      `runNotifier: invalid config for notifier "${plugin.slug}":\n` +
        lines.map((line) => `  - ${line}`).join('\n'),
      { source: `runNotifier(${plugin.slug})` },
    );
  }
  return config;
}
