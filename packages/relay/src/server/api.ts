import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { UserNotificationOptions, UserSettings } from '@plugboard/sdk';
import type { RelayConfig } from '../config/schema';
import type { Logger } from '../logger';
import type { Store } from '../store/types';
import { instanceIdOf } from '../routing';
import { mountDeliveries, mountGroups, mountInstances } from './deliveries';
import { createSilencesRouter } from './silences';
import { errorBody, safeEqual } from './ingest';

/**
 * The relay's JSON API: per-user notification settings (the seed's "IM
 * on/off", read by notifiers through `ctx.users`) and the delivery log
 * (list, show, replay). It is the
 * interim admin API until the relay has SSO-protected pages: one shared
 * bearer token (`api.token`), no per-user access control.
 */

/** Key-value namespace of the settings: one value per (lower-cased) e-mail. */
export const USERS_NAMESPACE = 'users';

export interface UserNotificationSettings {
  /** On/off for every project; null: not set (the default applies). */
  global: boolean | null;
  /** On/off per project slug; wins over `global`. */
  projects: Record<string, boolean>;
}

const EMAIL = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:".]+$/;
const PROJECT_SLUG = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** The canonical form of an e-mail, or undefined when it is not one. */
export function normalizeEmail(value: string): string | undefined {
  const email = value.trim().toLowerCase();
  return email.length <= 254 && EMAIL.test(email) ? email : undefined;
}

function emptySettings(): UserNotificationSettings {
  return { global: null, projects: {} };
}

/** What the store holds for a user; tolerant of missing or odd values. */
export async function readUserSettings(
  store: Store,
  email: string,
): Promise<UserNotificationSettings> {
  const raw = (await store.kvGet(USERS_NAMESPACE, email)) as
    Partial<UserNotificationSettings> | undefined;
  const out = emptySettings();
  if (!raw || typeof raw !== 'object') return out;
  if (typeof raw.global === 'boolean') out.global = raw.global;
  if (raw.projects && typeof raw.projects === 'object') {
    for (const [slug, on] of Object.entries(raw.projects)) {
      if (typeof on === 'boolean') out.projects[slug] = on;
    }
  }
  return out;
}

/** `ctx.users` for deliveries: project setting, else global, else the default (on). */
export function storeUserSettings(store: Store): UserSettings {
  return {
    async isNotificationEnabled(
      email: string,
      project?: string,
      options?: UserNotificationOptions,
    ): Promise<boolean> {
      const fallback = options?.defaultEnabled ?? true;
      const key = normalizeEmail(email);
      if (!key) return fallback;
      const settings = await readUserSettings(store, key);
      if (project !== undefined) {
        const own = settings.projects[project];
        if (own !== undefined) return own;
      }
      return settings.global ?? fallback;
    },
  };
}

export interface ApiDeps {
  config: RelayConfig;
  store: Store;
  logger: Logger;
}

class BadRequest extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The validated change of a PUT body; throws BadRequest naming the field. */
function parseUpdate(body: unknown): {
  global?: boolean | null;
  projects: Record<string, boolean | null>;
} {
  if (!isRecord(body)) {
    throw new BadRequest('body: must be a JSON object like {"global": false}');
  }
  for (const key of Object.keys(body)) {
    if (key !== 'global' && key !== 'projects') {
      throw new BadRequest(`${key}: unknown field; allowed: global, projects`);
    }
  }
  const out: { global?: boolean | null; projects: Record<string, boolean | null> } = {
    projects: {},
  };
  if ('global' in body) {
    if (body.global !== null && typeof body.global !== 'boolean') {
      throw new BadRequest('global: must be true, false or null (null clears it)');
    }
    out.global = body.global;
  }
  if ('projects' in body) {
    if (!isRecord(body.projects)) {
      throw new BadRequest('projects: must be an object of project slug → true, false or null');
    }
    for (const [slug, on] of Object.entries(body.projects)) {
      if (!PROJECT_SLUG.test(slug)) {
        throw new BadRequest(
          `projects.${JSON.stringify(slug).slice(0, 60)}: not a project slug (letters, digits, "-", "_", ".")`,
        );
      }
      if (on !== null && typeof on !== 'boolean') {
        throw new BadRequest(`projects.${slug}: must be true, false or null (null clears it)`);
      }
      out.projects[slug] = on;
    }
  }
  return out;
}

/** Express router mounted at `/api`. */
export function createApiRouter(deps: ApiDeps): Router {
  const { store } = deps;
  const router = express.Router();

  router.use((req: Request, res: Response, next: NextFunction) => {
    const token = deps.config.api.token;
    if (!token) {
      res
        .status(503)
        .json(
          errorBody(
            'PB_API_DISABLED',
            'the API is disabled: this relay was started without api.token. Start the relay ' +
              'itself (plugboard serve) with api.token (or PLUGBOARD_API_TOKEN) set; setting ' +
              'it only where the CLI runs is not enough',
          ),
        );
      return;
    }
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      res
        .status(401)
        .set('www-authenticate', 'Bearer')
        .json(errorBody('PB_SIGNATURE_MISSING', 'send the API token as "Authorization: Bearer …"'));
      return;
    }
    if (!safeEqual(match[1] as string, token)) {
      res
        .status(401)
        .set('www-authenticate', 'Bearer')
        .json(errorBody('PB_SIGNATURE_INVALID', 'the API token is not valid'));
      return;
    }
    next();
  });

  router.use(express.json({ limit: '64kb', type: () => true }));

  const emailOf = (req: Request, res: Response): string | undefined => {
    const raw = String(req.params.email ?? '');
    const email = normalizeEmail(raw);
    if (!email) {
      res
        .status(400)
        .json(errorBody('PB_PAYLOAD_INVALID', 'email: the path must name an e-mail address'));
    }
    return email;
  };

  router.get('/users/:email/notifications', async (req, res, next) => {
    try {
      const email = emailOf(req, res);
      if (!email) return;
      res.json({ email, ...(await readUserSettings(store, email)) });
    } catch (err) {
      next(err);
    }
  });

  router.put('/users/:email/notifications', async (req, res, next) => {
    try {
      const email = emailOf(req, res);
      if (!email) return;
      let update: ReturnType<typeof parseUpdate>;
      try {
        update = parseUpdate(req.body);
      } catch (err) {
        if (err instanceof BadRequest) {
          res.status(400).json(errorBody('PB_PAYLOAD_INVALID', err.message));
          return;
        }
        throw err;
      }
      // Read-modify-write: concurrent PUTs for one user may lose one change;
      // fine for an admin API used by hand.
      const settings = await readUserSettings(store, email);
      if (update.global !== undefined) settings.global = update.global;
      for (const [slug, on] of Object.entries(update.projects)) {
        if (on === null) delete settings.projects[slug];
        else settings.projects[slug] = on;
      }
      await store.kvSet(USERS_NAMESPACE, email, settings);
      deps.logger.info({ email, ...settings }, 'user notification settings changed');
      res.json({ email, ...settings });
    } catch (err) {
      next(err);
    }
  });

  mountDeliveries(router, store);
  mountGroups(router, store);
  router.use('/silences', createSilencesRouter({ store, logger: deps.logger }));
  mountInstances(router, store, () =>
    deps.config.routes.flatMap((r) => r.instances.map((i) => instanceIdOf(r, i))),
  );

  router.use((_req: Request, res: Response) => {
    res.status(404).json(errorBody('PB_NOT_FOUND', 'no such API endpoint'));
  });

  // Bodies that are not JSON, or too large, are the client's mistake.
  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const e = err as { type?: unknown; status?: unknown };
    if (e.type === 'entity.parse.failed') {
      res.status(400).json(errorBody('PB_PAYLOAD_INVALID', 'body: not valid JSON'));
      return;
    }
    if (e.type === 'entity.too.large') {
      res.status(413).json(errorBody('PB_PAYLOAD_TOO_LARGE', 'body: larger than 64 KiB'));
      return;
    }
    next(err);
  });

  return router;
}
