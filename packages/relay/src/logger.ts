import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Keys whose values are never logged, wherever they appear. */
const REDACT_PATHS = [
  'secret',
  'clientSecret',
  'token',
  'password',
  'authorization',
  '*.secret',
  '*.clientSecret',
  '*.token',
  '*.password',
  '*.authorization',
  '*.*.secret',
  '*.*.token',
  'headers.authorization',
  'headers["sentry-hook-signature"]',
];

/** Replace every known secret value inside strings of a log record. */
export function scrub(value: unknown, secrets: ReadonlySet<string>, depth = 0): unknown {
  if (secrets.size === 0 || depth > 6) return value;
  if (typeof value === 'string') {
    let out = value;
    for (const s of secrets)
      if (s.length >= 4 && out.includes(s)) out = out.split(s).join('[REDACTED]');
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, secrets, depth + 1));
  if (value instanceof Error) {
    // Errors keep their (non-enumerable) message and stack, scrubbed.
    const e = value as Error & { code?: unknown; cause?: unknown };
    const out: Record<string, unknown> = {
      type: e.name,
      message: scrub(e.message, secrets),
      stack: scrub(e.stack, secrets),
    };
    if (e.code !== undefined) out.code = e.code;
    if (e.cause !== undefined) out.cause = scrub(e.cause, secrets, depth + 1);
    for (const [k, v] of Object.entries(e)) out[k] = scrub(v, secrets, depth + 1);
    return out;
  }
  if (value && typeof value === 'object' && !(value instanceof Buffer)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = scrub(v, secrets, depth + 1);
    return out;
  }
  return value;
}

export interface LoggerOptions {
  level: string;
  /** Secret values to scrub from any string logged (resolved references, tokens). */
  secrets?: ReadonlySet<string>;
  destination?: DestinationStream;
}

/** JSON logs on stdout; secrets redacted by key and by value. */
export function createLogger(options: LoggerOptions): Logger {
  const secrets = options.secrets ?? new Set<string>();
  return pino(
    {
      level: options.level,
      base: { service: 'plugboard' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      formatters: {
        level: (label) => ({ level: label }),
        log: (obj) => scrub(obj, secrets) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          // Messages are scrubbed too: an error message may quote a secret.
          const scrubbed = args.map((a) => (typeof a === 'string' ? scrub(a, secrets) : a));
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
