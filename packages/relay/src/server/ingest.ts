import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  parseLegacyWebhook,
  parseSentryWebhook,
  verifySentrySignature,
  type Notification,
  type ParseResult,
} from '@plugboard/sdk';
import type { RelayConfig } from '../config/schema';
import type { Logger } from '../logger';
import type { RelayMetrics } from '../metrics';
import { explainRoute, matchRoutes } from '../routing';
import type { GroupHit, IncomingWebhook, NewJob, Store, WebhookSource } from '../store/types';
import { planDeliveries } from '../noise/grouping';

export interface IngestDeps {
  config: RelayConfig;
  store: Store;
  logger: Logger;
  metrics: RelayMetrics;
  /** Called with the instance ids that got new jobs. */
  onJobs: (instanceIds: string[]) => void;
  onUnexpectedError: (err: unknown, context: Record<string, string>) => void;
  /** Told when the store refused a webhook, so readiness can say so at once. */
  onStoreFailure?: (err: unknown) => void;
  /**
   * Called with each new webhook's notification once it is stored (routed or
   * not; not for duplicates). A returned promise is awaited before the 202,
   * so what it records (inhibition sources) is on record when Sentry hears
   * back; most calls return nothing and cost nothing.
   */
  onAccepted?: (n: Notification) => Promise<void> | void;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function errorBody(
  code: string,
  message: string,
): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time string comparison (hashing first equalises the lengths). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

class TooLarge extends Error {}
class ClientGone extends Error {}

/** The body bytes, refusing more than `limit` without buffering them. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new TooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new TooLarge());
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    let ended = false;
    req.once('end', () => {
      ended = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    // A request stream only errors when the client aborted or reset it.
    req.once('error', () => reject(new ClientGone()));
    // A client that goes away mid-body must not leave the promise pending.
    req.once('close', () => {
      if (!ended) reject(new ClientGone());
    });
  });
}

/**
 * `installation.*` bodies carry a one-time OAuth grant `code` that, with the
 * client secret, buys an API token. The signature is checked on the original
 * bytes; what is stored is the body without it.
 */
function withoutGrantCode(resource: string, json: unknown, body: Buffer): Buffer {
  if (resource !== 'installation') return body;
  const inst = (json as { data?: { installation?: Record<string, unknown> } } | null)?.data
    ?.installation;
  if (!inst || typeof inst !== 'object' || !('code' in inst)) return body;
  delete inst.code;
  return Buffer.from(JSON.stringify(json));
}

export interface IngestHandlers {
  sentry(req: IncomingMessage, res: ServerResponse): Promise<void>;
  legacy(req: IncomingMessage, res: ServerResponse, query: string): Promise<void>;
}

/**
 * The webhook endpoints, on plain `node:http`: they are the hot path (Sentry
 * waits 1 s, and a storm is thousands a second), and a framework's request
 * decoration costs several times what verifying and storing a webhook does.
 */
export function createIngestHandlers(deps: IngestDeps): IngestHandlers {
  const { config, store, logger, metrics } = deps;
  const secrets = config.sentry.clientSecret
    ? Array.isArray(config.sentry.clientSecret)
      ? config.sentry.clientSecret
      : [config.sentry.clientSecret]
    : [];
  const limit = config.limits.bodyBytes;
  const dedupWindowMs = config.sentry.dedupWindowSeconds * 1000;
  const count = (resource: string, outcome: string): void => {
    metrics.countWebhook(resource, outcome);
  };

  function tooLarge(res: ServerResponse, resource: string): void {
    count(resource, 'too_large');
    // The rest of the body is not read: close the connection after answering.
    sendJson(
      res,
      413,
      errorBody('PB_PAYLOAD_TOO_LARGE', `body exceeds limits.bodyBytes (${limit} bytes)`),
      { connection: 'close' },
    );
  }

  function parseJson(res: ServerResponse, resource: string, body: Buffer): unknown {
    try {
      return JSON.parse(body.toString('utf8'));
    } catch (err) {
      count(resource, 'invalid');
      sendJson(
        res,
        400,
        errorBody('PB_PAYLOAD_INVALID', `body is not valid JSON: ${(err as Error).message}`),
      );
      return undefined;
    }
  }

  async function accept(
    res: ServerResponse,
    source: WebhookSource,
    resourceHeader: string,
    requestId: string | undefined,
    body: Buffer,
    parsed: ParseResult,
    started: bigint,
  ): Promise<void> {
    if (!parsed.ok && parsed.reason === 'invalid_payload') {
      count(resourceHeader, 'invalid');
      sendJson(res, 400, errorBody('PB_PAYLOAD_INVALID', parsed.detail));
      return;
    }
    const webhook: IncomingWebhook = {
      source,
      resource: parsed.ok ? parsed.notification.resource : resourceHeader,
      action: parsed.ok ? parsed.notification.action : (parsed.action ?? ''),
      dedupKey: parsed.ok ? parsed.notification.dedupKey : '',
      body,
      receivedAt: Date.now(),
    };
    if (requestId) webhook.requestId = requestId;
    let jobs: NewJob[] = [];
    let groups: GroupHit[] = [];
    let reason: string | undefined;
    if (parsed.ok) {
      const n = parsed.notification;
      const plan = planDeliveries(matchRoutes(config.routes, n), n, config.dispatch.maxAttempts);
      jobs = plan.jobs;
      groups = plan.groups;
      if (jobs.length === 0 && groups.length === 0 && plan.dropped.length > 0) {
        reason = `resolved notifications are not sent by route(s) ${plan.dropped.join(', ')} (sendResolved: false)`;
        webhook.detail = reason;
      } else if (jobs.length === 0 && groups.length === 0) {
        reason =
          config.routes.length === 0
            ? 'no routes are configured'
            : `no route takes ${n.kind}: ` +
              config.routes.map((r) => `${r.name}: ${explainRoute(r, n)}`).join('; ');
        webhook.detail = reason;
      }
    } else {
      reason = parsed.detail;
      webhook.detail = parsed.detail;
    }
    let result;
    try {
      result = await store.ingest({
        webhook,
        jobs,
        ...(groups.length > 0 ? { groups } : {}),
        unsupported: !parsed.ok,
        dedupWindowMs,
      });
    } catch (err) {
      // Never acknowledge what could not be stored: Sentry will retry.
      deps.onStoreFailure?.(err);
      count(webhook.resource, 'unavailable');
      logger.error({ err }, 'cannot store webhook; answering 503');
      sendJson(
        res,
        503,
        errorBody('PB_STORE_UNAVAILABLE', 'the relay cannot store webhooks right now'),
        { 'retry-after': '5' },
      );
      return;
    }
    if (parsed.ok && (result.status === 'accepted' || result.status === 'ignored')) {
      const pending = deps.onAccepted?.(parsed.notification);
      if (pending) {
        try {
          await pending;
        } catch (err) {
          // The webhook is stored and will be delivered; only what it opens
          // or closes for inhibition is lost, which must not cost a retry.
          logger.error({ err }, 'cannot record the inhibition source or resolution of a webhook');
        }
      }
    }
    count(webhook.resource, result.status);
    metrics.ingestLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (result.status === 'accepted' && jobs.length > 0) {
      deps.onJobs(
        jobs.length === 1 ? [jobs[0]!.instanceId] : [...new Set(jobs.map((j) => j.instanceId))],
      );
    }
    const answer: Record<string, unknown> = { id: result.webhookId, status: result.status };
    if (result.status === 'accepted') answer.deliveries = result.jobIds.length;
    if (result.grouped) answer.grouped = result.grouped;
    if (result.duplicateOf) answer.duplicateOf = result.duplicateOf;
    if (reason) answer.reason = reason;
    sendJson(res, 202, answer);
  }

  function guarded(
    path: string,
    fn: (req: IncomingMessage, res: ServerResponse, query: string) => Promise<void>,
  ) {
    return async (req: IncomingMessage, res: ServerResponse, query = ''): Promise<void> => {
      try {
        await fn(req, res, query);
      } catch (err) {
        deps.onUnexpectedError(err, { path });
        logger.error({ err, path }, 'unexpected error');
        if (!res.headersSent) sendJson(res, 500, errorBody('PB_INTERNAL', 'internal error'));
        else res.destroy();
      }
    };
  }

  const sentry = guarded('/hooks/sentry', async (req, res) => {
    const started = process.hrtime.bigint();
    const resource = header(req, 'sentry-hook-resource') ?? '';
    let body: Buffer;
    try {
      body = await readBody(req, limit);
    } catch (err) {
      if (err instanceof TooLarge) return tooLarge(res, resource || 'unknown');
      if (err instanceof ClientGone) return;
      throw err;
    }
    if (secrets.length === 0) {
      count(resource || 'unknown', 'unauthorized');
      sendJson(
        res,
        503,
        errorBody(
          'PB_SIGNATURE_MISSING',
          'the relay has no Sentry client secret configured (PLUGBOARD_SENTRY_CLIENT_SECRET or sentry.clientSecret)',
        ),
      );
      return;
    }
    const check = verifySentrySignature(body, req.headers['sentry-hook-signature'], secrets);
    if (!check.ok) {
      count(resource || 'unknown', 'unauthorized');
      logger.warn(
        { code: check.code, resource, requestId: header(req, 'request-id') },
        'webhook refused',
      );
      sendJson(res, 401, errorBody(check.code, check.reason));
      return;
    }
    if (!resource) {
      count('unknown', 'invalid');
      sendJson(res, 400, errorBody('PB_PAYLOAD_INVALID', 'missing Sentry-Hook-Resource header'));
      return;
    }
    const json = parseJson(res, resource, body);
    if (json === undefined) return;
    const parsed = parseSentryWebhook({ resource, body: json });
    await accept(
      res,
      'sentry',
      resource,
      header(req, 'request-id'),
      withoutGrantCode(resource, json, body),
      parsed,
      started,
    );
  });

  const legacy = guarded('/hooks/sentry/legacy', async (req, res, query) => {
    const started = process.hrtime.bigint();
    let body: Buffer;
    try {
      body = await readBody(req, limit);
    } catch (err) {
      if (err instanceof TooLarge) return tooLarge(res, 'legacy_webhook');
      if (err instanceof ClientGone) return;
      throw err;
    }
    const expected = config.legacy.token;
    if (!expected) {
      count('legacy_webhook', 'unauthorized');
      sendJson(
        res,
        503,
        errorBody(
          'PB_SIGNATURE_MISSING',
          'the legacy endpoint is disabled: set legacy.token (or PLUGBOARD_LEGACY_TOKEN)',
        ),
      );
      return;
    }
    const auth = header(req, 'authorization');
    const given =
      (auth?.toLowerCase().startsWith('bearer ') ? auth.slice(7).trim() : undefined) ??
      header(req, 'x-plugboard-token') ??
      (query ? (new URLSearchParams(query).get('token') ?? undefined) : undefined);
    if (!given || !safeEqual(given, expected)) {
      count('legacy_webhook', 'unauthorized');
      sendJson(
        res,
        401,
        errorBody(
          given ? 'PB_SIGNATURE_INVALID' : 'PB_SIGNATURE_MISSING',
          given
            ? 'the token does not match legacy.token'
            : 'missing token: send Authorization: Bearer <token>, X-Plugboard-Token, or ?token=',
        ),
      );
      return;
    }
    const json = parseJson(res, 'legacy_webhook', body);
    if (json === undefined) return;
    await accept(
      res,
      'legacy',
      'legacy_webhook',
      undefined,
      body,
      parseLegacyWebhook(json),
      started,
    );
  });

  return { sentry, legacy };
}
