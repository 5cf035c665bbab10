import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { RelayConfig } from '../config/schema';
import type { Logger } from '../logger';
import type { RelayMetrics } from '../metrics';
import type { Store } from '../store/types';
import { createApiRouter } from './api';
import { createIngestHandlers, errorBody, sendJson, type IngestDeps } from './ingest';

export { safeEqual } from './ingest';

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
  onStoreFailure?: (err: unknown) => void;
  /** Sign-in and the relay's pages (server/pages), mounted at the root. */
  pages?: express.Router;
  /** See IngestDeps.onAccepted. */
  onAccepted?: IngestDeps['onAccepted'];
}

/** Health, readiness and metrics: the low-traffic endpoints, on express. */
function createExpressApp(deps: AppDeps): express.Express {
  const { logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Who the client is (req.ip): the socket's peer unless `trustProxy` names
  // the proxies whose X-Forwarded-For may be believed.
  app.set('trust proxy', deps.config.trustProxy);

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

  app.use('/api', createApiRouter(deps));

  if (deps.pages) app.use(deps.pages);

  app.use((_req: Request, res: Response) => {
    res.status(404).json(errorBody('PB_NOT_FOUND', 'no such endpoint'));
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    deps.onUnexpectedError(err, { path: req.path });
    logger.error({ err, path: req.path }, 'unexpected error');
    res.status(500).json(errorBody('PB_INTERNAL', 'internal error'));
  });
  return app;
}

/**
 * The relay's request listener: webhook endpoints on the fast path, every
 * other request to express.
 */
export function createApp(deps: AppDeps): RequestListener {
  const ingest = createIngestHandlers(deps);
  const app = createExpressApp(deps);
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path === '/hooks/sentry' || path === '/hooks/sentry/legacy') {
      if (req.method !== 'POST') {
        sendJson(res, 405, errorBody('PB_NOT_FOUND', `${path} takes POST only`), {
          allow: 'POST',
        });
        return;
      }
      if (path === '/hooks/sentry') void ingest.sentry(req, res);
      else void ingest.legacy(req, res, q === -1 ? '' : url.slice(q + 1));
      return;
    }
    app(req, res);
  };
}
