import type { Request, Response } from 'express';
import type { DiscoveredPlugin } from '@plugboard/sdk';
import type { AuditLog } from '../../auth/audit';
import type { ConfiguredSsoProvider } from '../../auth/providers';
import type { Session, SessionManager } from '../../auth/sessions';
import type { UserDirectory } from '../../auth/users';
import type { RelayConfig } from '../../config/schema';
import type { Logger } from '../../logger';
import type { Store } from '../../store/types';
import type { NavUser } from './html';

/** What every page handler works with. */
export interface PagesContext {
  config: RelayConfig;
  store: Store;
  logger: Logger;
  sessions: SessionManager;
  users: UserDirectory;
  audit: AuditLog;
  providers: readonly ConfiguredSsoProvider[];
  plugins: () => DiscoveredPlugin[];
}

/** The session the request came with, once `loadSession` ran. */
export function sessionOf(res: Response): Session | undefined {
  return res.locals.session as Session | undefined;
}

/** The signed-in person, as the layout shows them. */
export function navUser(res: Response): NavUser | undefined {
  const s = sessionOf(res);
  return s ? { email: s.email, role: s.role, csrf: s.csrf } : undefined;
}

/** One query parameter as a string (the first when repeated). */
export function queryParam(req: Request, name: string): string | undefined {
  const v = (req.query as Record<string, unknown>)[name];
  const first = Array.isArray(v) ? v[0] : v;
  return typeof first === 'string' ? first : undefined;
}

/** One form field as a string (the first when repeated). */
export function formField(req: Request, name: string): string | undefined {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const v = body[name];
  const first = Array.isArray(v) ? v[0] : v;
  return typeof first === 'string' ? first : undefined;
}

/**
 * A path on this relay to go back to after signing in, or undefined. Only
 * local absolute paths: `//host` and `/\host` are other sites to a browser.
 */
export function safeReturnTo(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > 512) return undefined;
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return undefined;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return undefined;
  if (value.startsWith('/auth/') || value === '/login' || value.startsWith('/login?')) {
    return undefined;
  }
  return value;
}
