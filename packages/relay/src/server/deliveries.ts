import type { Request, Response, Router } from 'express';
import { JOB_STATES, type JobFilter, type JobState, type Store } from '../store/types';
import { INSTANCES_NAMESPACE, type PauseRecord } from '../dispatch/pause';
import { errorBody } from './ingest';

/** `30m`, `2h`, `7d` ago, or an ISO date, as ms since the epoch. */
export function parseSince(value: string, now = Date.now()): number | undefined {
  const rel = /^(\d+)\s*(s|m|h|d)$/.exec(value.trim());
  if (rel) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
      rel[2] as 's' | 'm' | 'h' | 'd'
    ];
    return now - Number(rel[1]) * unit;
  }
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * A delivery-log filter from query parameters or a JSON body; throws a
 * message naming the bad field.
 */
export function parseFilter(input: Record<string, unknown>): JobFilter {
  const f: JobFilter = {};
  const str = (key: string): string | undefined => {
    const v = input[key];
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string') throw new Error(`${key}: must be a string`);
    return v;
  };
  const state = str('state');
  if (state !== undefined) {
    if (!JOB_STATES.includes(state as JobState)) {
      throw new Error(`state: must be one of ${JOB_STATES.join(', ')}`);
    }
    f.state = state as JobState;
  }
  const instance = str('instance');
  if (instance) f.instanceId = instance;
  const project = str('project');
  if (project) f.project = project;
  const code = str('code');
  if (code) f.errorCode = code;
  for (const key of ['since', 'until'] as const) {
    const v = str(key);
    if (v === undefined) continue;
    const t = parseSince(v);
    if (t === undefined) throw new Error(`${key}: an ISO date or a duration such as 30m, 2h, 7d`);
    f[key] = t;
  }
  const limit = input.limit;
  if (limit !== undefined && limit !== '') {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error('limit: 1 to 1000');
    f.limit = n;
  }
  return f;
}

/**
 * The delivery log on the JSON API: list, show (with every attempt), and
 * replay dead (or any finished) deliveries.
 */
export function mountDeliveries(router: Router, store: Store): void {
  router.get('/deliveries', async (req: Request, res: Response, next) => {
    let filter: JobFilter;
    try {
      filter = parseFilter(req.query as Record<string, unknown>);
    } catch (err) {
      res.status(400).json(errorBody('PB_PAYLOAD_INVALID', (err as Error).message));
      return;
    }
    try {
      res.json({ deliveries: await store.listJobs(filter) });
    } catch (err) {
      next(err);
    }
  });

  router.get('/deliveries/:id', async (req: Request, res: Response, next) => {
    try {
      const id = String(req.params.id ?? '');
      const job = /^\d+$/.test(id) ? await store.getJob(id) : undefined;
      if (!job) {
        res.status(404).json(errorBody('PB_NOT_FOUND', `no delivery ${JSON.stringify(id)}`));
        return;
      }
      const webhook = await store.getWebhook(job.webhookId);
      res.json({
        delivery: job,
        webhook: webhook
          ? {
              id: webhook.id,
              resource: webhook.resource,
              action: webhook.action,
              status: webhook.status,
              receivedAt: webhook.receivedAt,
              requestId: webhook.requestId ?? null,
            }
          : null,
        attempts: await store.listAttempts(job.id),
      });
    } catch (err) {
      next(err);
    }
  });

  router.post('/deliveries/replay', async (req: Request, res: Response, next) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    let selection: { ids?: string[]; filter?: JobFilter };
    try {
      if (body.ids !== undefined) {
        if (
          !Array.isArray(body.ids) ||
          !body.ids.every((i) => typeof i === 'string' && /^\d+$/.test(i))
        ) {
          throw new Error('ids: must be a list of delivery ids (strings of digits)');
        }
        selection = { ids: body.ids as string[] };
      } else if (
        body.filter !== undefined &&
        typeof body.filter === 'object' &&
        body.filter !== null
      ) {
        selection = { filter: parseFilter(body.filter as Record<string, unknown>) };
      } else {
        throw new Error(
          'give "ids" (a list) or "filter" (state, instance, project, code, since, until)',
        );
      }
    } catch (err) {
      res.status(400).json(errorBody('PB_PAYLOAD_INVALID', (err as Error).message));
      return;
    }
    try {
      res.json({ replayed: await store.replay(selection) });
    } catch (err) {
      next(err);
    }
  });
}

/**
 * Plugin instances and their pause state: an instance whose target failed
 * `pauseAfterFailures` times in a row stops delivering until resumed here.
 */
export function mountInstances(
  router: Router,
  store: Store,
  instanceIds: () => readonly string[],
): void {
  router.get('/instances', async (_req: Request, res: Response, next) => {
    try {
      const instances = [];
      for (const id of instanceIds()) {
        const record = (await store.kvGet(INSTANCES_NAMESPACE, id)) as PauseRecord | undefined;
        instances.push(
          record?.paused
            ? { id, paused: true, since: record.since, reason: record.reason }
            : { id, paused: false },
        );
      }
      res.json({ instances });
    } catch (err) {
      next(err);
    }
  });

  router.post('/instances/:id/resume', async (req: Request, res: Response, next) => {
    try {
      const id = String(req.params.id ?? '');
      if (!instanceIds().includes(id)) {
        res
          .status(404)
          .json(
            errorBody(
              'PB_NOT_FOUND',
              `no instance ${JSON.stringify(id)}; known: ${instanceIds().join(', ') || 'none'}`,
            ),
          );
        return;
      }
      const was = (await store.kvGet(INSTANCES_NAMESPACE, id)) as PauseRecord | undefined;
      await store.kvDelete(INSTANCES_NAMESPACE, id);
      // Every replica's dispatcher sees the record gone at its next poll.
      res.json({ id, resumed: was?.paused === true });
    } catch (err) {
      next(err);
    }
  });
}

/**
 * Open notification groups of grouped routes, most recently active first:
 * what each has counted and when its next message is due.
 */
export function mountGroups(router: Router, store: Store): void {
  router.get('/groups', async (req: Request, res: Response, next) => {
    try {
      const route = typeof req.query.route === 'string' ? req.query.route : undefined;
      const rawLimit = typeof req.query.limit === 'string' ? Number(req.query.limit) : 100;
      if (!Number.isInteger(rawLimit) || rawLimit < 1 || rawLimit > 1000) {
        res.status(400).json(errorBody('PB_PAYLOAD_INVALID', 'limit: an integer from 1 to 1000'));
        return;
      }
      const groups = await store.listGroups({
        ...(route ? { routeName: route } : {}),
        limit: rawLimit,
      });
      res.json({
        groups: groups.map((g) => ({
          route: g.routeName,
          key: g.groupKey,
          status: g.status,
          pending: g.pending,
          total: g.total,
          sent: g.sent,
          suppressed: g.suppressed,
          firstAt: new Date(g.firstAt).toISOString(),
          lastAt: new Date(g.lastAt).toISOString(),
          lastMessageAt: g.lastFlushAt === undefined ? null : new Date(g.lastFlushAt).toISOString(),
          nextFlushAt: new Date(g.nextFlushAt).toISOString(),
          ...(g.project ? { project: g.project } : {}),
        })),
      });
    } catch (err) {
      next(err);
    }
  });
}
