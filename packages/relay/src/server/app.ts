import { timingSafeEqual, createHash } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
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
import type { IncomingWebhook, NewJob, Store, WebhookSource } from '../store/types';

export interface ReadyReport {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

export interface AppDeps {
  config: RelayConfig;
  store: Store;
  logger: Logger;
  metrics: RelayMetrics;
  /** Called with the instance ids that got new jobs. */
  onJobs: (instanceIds: string[]) => void;
  ready: () => Promise<ReadyReport>;
  onUnexpectedError: (err: unknown, context: Record<string, string>) => void;
}

function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time string comparison (hashing first equalises the lengths). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

function header(req: Request, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
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

/** The express application: webhook endpoints, health, readiness, metrics. */
export function createApp(deps: AppDeps): express.Express {
  const { config, store, logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const secrets = config.sentry.clientSecret
    ? Array.isArray(config.sentry.clientSecret)
      ? config.sentry.clientSecret
      : [config.sentry.clientSecret]
    : [];
  const rawBody = express.raw({ type: () => true, limit: config.limits.bodyBytes });
  const maxAttemptsFor = (inst: { maxAttempts?: number | undefined }): number =>
    inst.maxAttempts ?? config.dispatch.maxAttempts;

  async function accept(
    res: Response,
    source: WebhookSource,
    resourceHeader: string,
    requestId: string | undefined,
    body: Buffer,
    parsed: ParseResult,
    started: bigint,
  ): Promise<void> {
    const receivedAt = Date.now();
    if (!parsed.ok && parsed.reason === 'invalid_payload') {
      metrics.webhooks.inc({ resource: resourceHeader, outcome: 'invalid' });
      res.status(400).json(errorBody('PB_PAYLOAD_INVALID', parsed.detail));
      return;
    }
    const webhook: IncomingWebhook = {
      source,
      resource: parsed.ok ? parsed.notification.resource : resourceHeader,
      action: parsed.ok ? parsed.notification.action : (parsed.action ?? ''),
      dedupKey: parsed.ok ? parsed.notification.dedupKey : '',
      body,
      receivedAt,
    };
    if (requestId) webhook.requestId = requestId;
    let jobs: NewJob[] = [];
    let reason: string | undefined;
    if (parsed.ok) {
      const n: Notification = parsed.notification;
      jobs = matchRoutes(config.routes, n).map((t) => ({
        routeName: t.route.name,
        instanceId: t.instanceId,
        pluginSlug: t.instance.plugin,
        maxAttempts: maxAttemptsFor(t.instance),
      }));
      if (jobs.length === 0) {
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
        unsupported: !parsed.ok,
        dedupWindowMs: config.sentry.dedupWindowSeconds * 1000,
      });
    } catch (err) {
      // Never acknowledge what could not be stored: Sentry will retry.
      metrics.webhooks.inc({ resource: webhook.resource, outcome: 'unavailable' });
      logger.error({ err }, 'cannot store webhook; answering 503');
      res.set('Retry-After', '5');
      res
        .status(503)
        .json(errorBody('PB_STORE_UNAVAILABLE', 'the relay cannot store webhooks right now'));
      return;
    }
    metrics.webhooks.inc({ resource: webhook.resource, outcome: result.status });
    metrics.ingestLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (result.status === 'accepted') deps.onJobs([...new Set(jobs.map((j) => j.instanceId))]);
    const answer: Record<string, unknown> = { id: result.webhookId, status: result.status };
    if (result.status === 'accepted') answer.deliveries = result.jobIds.length;
    if (result.duplicateOf) answer.duplicateOf = result.duplicateOf;
    if (reason) answer.reason = reason;
    res.status(202).json(answer);
  }

  app.post('/hooks/sentry', rawBody, async (req: Request, res: Response) => {
    const started = process.hrtime.bigint();
    const resource = header(req, 'sentry-hook-resource') ?? '';
    if (secrets.length === 0) {
      metrics.webhooks.inc({ resource: resource || 'unknown', outcome: 'unauthorized' });
      res
        .status(503)
        .json(
          errorBody(
            'PB_SIGNATURE_MISSING',
            'the relay has no Sentry client secret configured (PLUGBOARD_SENTRY_CLIENT_SECRET or sentry.clientSecret)',
          ),
        );
      return;
    }
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const check = verifySentrySignature(body, req.headers['sentry-hook-signature'], secrets);
    if (!check.ok) {
      metrics.webhooks.inc({ resource: resource || 'unknown', outcome: 'unauthorized' });
      logger.warn(
        { code: check.code, resource, requestId: header(req, 'request-id') },
        'webhook refused',
      );
      res.status(401).json(errorBody(check.code, check.reason));
      return;
    }
    if (!resource) {
      metrics.webhooks.inc({ resource: 'unknown', outcome: 'invalid' });
      res.status(400).json(errorBody('PB_PAYLOAD_INVALID', 'missing Sentry-Hook-Resource header'));
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (err) {
      metrics.webhooks.inc({ resource, outcome: 'invalid' });
      res
        .status(400)
        .json(errorBody('PB_PAYLOAD_INVALID', `body is not valid JSON: ${(err as Error).message}`));
      return;
    }
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

  app.post('/hooks/sentry/legacy', rawBody, async (req: Request, res: Response) => {
    const started = process.hrtime.bigint();
    const expected = config.legacy.token;
    if (!expected) {
      metrics.webhooks.inc({ resource: 'legacy_webhook', outcome: 'unauthorized' });
      res
        .status(503)
        .json(
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
      (typeof req.query.token === 'string' ? req.query.token : undefined);
    if (!given || !safeEqual(given, expected)) {
      metrics.webhooks.inc({ resource: 'legacy_webhook', outcome: 'unauthorized' });
      res
        .status(401)
        .json(
          errorBody(
            given ? 'PB_SIGNATURE_INVALID' : 'PB_SIGNATURE_MISSING',
            given
              ? 'the token does not match legacy.token'
              : 'missing token: send Authorization: Bearer <token>, X-Plugboard-Token, or ?token=',
          ),
        );
      return;
    }
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (err) {
      metrics.webhooks.inc({ resource: 'legacy_webhook', outcome: 'invalid' });
      res
        .status(400)
        .json(errorBody('PB_PAYLOAD_INVALID', `body is not valid JSON: ${(err as Error).message}`));
      return;
    }
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

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const report = await deps.ready();
    res.status(report.ready ? 200 : 503).json(report);
  });

  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).json(errorBody('PB_NOT_FOUND', 'no such endpoint'));
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') {
      metrics.webhooks.inc({
        resource: header(req, 'sentry-hook-resource') ?? 'unknown',
        outcome: 'too_large',
      });
      res
        .status(413)
        .json(
          errorBody(
            'PB_PAYLOAD_TOO_LARGE',
            `body exceeds limits.bodyBytes (${config.limits.bodyBytes} bytes)`,
          ),
        );
      return;
    }
    if (type === 'request.aborted') return;
    const status = (err as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json(errorBody('PB_PAYLOAD_INVALID', (err as Error).message));
      return;
    }
    deps.onUnexpectedError(err, { path: req.path });
    logger.error({ err, path: req.path }, 'unexpected error');
    res.status(500).json(errorBody('PB_INTERNAL', 'internal error'));
  });

  return app;
}
