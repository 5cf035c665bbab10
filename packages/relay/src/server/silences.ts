import express, { type Request, type Response, type Router } from 'express';
import type { Logger } from '../logger';
import { Silences } from '../noise/silences';
import type { Store } from '../store/types';
import { errorBody } from './ingest';

export interface SilencesRouterDeps {
  store: Store;
  logger?: Logger;
  /** Clock for silence times (default `Date.now`). */
  now?: () => number;
  /** Share the gate's instance, so a change is seen by this process at once. */
  silences?: Silences;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `/api/silences` (mounted inside the API router, behind its bearer token):
 *
 *   GET    /            active and pending silences; `?all=true` adds ended ones
 *   GET    /:id         one silence
 *   POST   /            create: {matchers, duration | endsAt, startsAt?, createdBy, comment}
 *   DELETE /:id         expire now (kept for the record for 24 h)
 */
export function createSilencesRouter(deps: SilencesRouterDeps): Router {
  const silences =
    deps.silences ?? new Silences({ store: deps.store, ...(deps.now ? { now: deps.now } : {}) });
  const router = express.Router();

  const idOf = (req: Request, res: Response): string | undefined => {
    const id = String(req.params.id ?? '');
    if (UUID.test(id)) return id.toLowerCase();
    res.status(404).json(errorBody('PB_NOT_FOUND', `no silence ${JSON.stringify(id)}`));
    return undefined;
  };

  router.get('/', async (req, res, next) => {
    try {
      const all = req.query.all === 'true' || req.query.all === '1';
      res.json({ silences: await silences.list({ all }) });
    } catch (err) {
      next(err);
    }
  });

  router.get('/:id', async (req, res, next) => {
    try {
      const id = idOf(req, res);
      if (!id) return;
      const silence = await silences.get(id);
      if (!silence) {
        res.status(404).json(errorBody('PB_NOT_FOUND', `no silence ${id}`));
        return;
      }
      res.json({ silence });
    } catch (err) {
      next(err);
    }
  });

  router.post('/', async (req, res, next) => {
    try {
      const silence = await silences.create(req.body);
      deps.logger?.info(
        {
          silence: silence.id,
          matchers: silence.matchers,
          endsAt: silence.endsAt,
          createdBy: silence.createdBy,
        },
        'silence created',
      );
      res.status(201).json({ silence });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'PB_PAYLOAD_INVALID') {
        res.status(400).json(errorBody('PB_PAYLOAD_INVALID', (err as Error).message));
        return;
      }
      next(err);
    }
  });

  router.delete('/:id', async (req, res, next) => {
    try {
      const id = idOf(req, res);
      if (!id) return;
      const silence = await silences.expire(id);
      if (!silence) {
        res.status(404).json(errorBody('PB_NOT_FOUND', `no silence ${id}`));
        return;
      }
      deps.logger?.info({ silence: id }, 'silence expired');
      res.json({ silence });
    } catch (err) {
      next(err);
    }
  });

  return router;
}
