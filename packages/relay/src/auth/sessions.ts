import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { CookieOptions } from 'express';
import jwt from 'jsonwebtoken';
import type { Store } from '../store/types';

/**
 * Sessions of the relay's pages: a signed JWT (HS256, `sso.sessionSecret`)
 * in an HttpOnly cookie, whose id (`jti`) is also recorded in the store. The
 * token alone proves nothing: a session is live only while its record is,
 * so signing out, or an admin ending a user's sessions, ends it on every
 * replica even though the token itself has not expired.
 */

export const SSO_SESSIONS_NAMESPACE = 'sso-sessions';

const ISSUER = 'plugboard-relay';
const AUDIENCE = 'plugboard-pages';

export interface SessionRecord {
  email: string;
  role: 'admin' | 'member';
  name?: string;
  /** Provider id the person signed in with. */
  provider: string;
  /** Synchronizer token of the relay's forms, bound to this session. */
  csrf: string;
  createdAt: number;
  expiresAt: number;
}

export interface Session extends SessionRecord {
  id: string;
}

/** Why a cookie did not give a session. */
export type SessionProblem = 'missing' | 'invalid' | 'expired' | 'ended';

export interface SessionManagerOptions {
  store: Store;
  secret: string;
  ttlMs: number;
  /** Secure cookies (and the `__Host-` name prefix): when publicUrl is https. */
  secure: boolean;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
}

function keyOf(email: string, id: string): string {
  // E-mails never hold ":" (normalizeEmail refuses it): a prefix of one
  // user's keys never matches another user's.
  return `${email}:${id}`;
}

export class SessionManager {
  readonly cookieName: string;
  private readonly now: () => number;

  constructor(private readonly o: SessionManagerOptions) {
    // `__Host-`: the browser takes the cookie only if Secure, Path=/ and
    // host-only, so a sibling subdomain cannot plant or shadow it.
    this.cookieName = o.secure ? '__Host-plugboard_session' : 'plugboard_session';
    this.now = o.now ?? Date.now;
  }

  async start(user: {
    email: string;
    role: 'admin' | 'member';
    name?: string;
    provider: string;
  }): Promise<{ token: string; session: Session }> {
    const now = this.now();
    const id = randomUUID();
    const record: SessionRecord = {
      email: user.email,
      role: user.role,
      ...(user.name ? { name: user.name } : {}),
      provider: user.provider,
      csrf: randomBytes(32).toString('base64url'),
      createdAt: now,
      expiresAt: now + this.o.ttlMs,
    };
    await this.o.store.kvSet(
      SSO_SESSIONS_NAMESPACE,
      keyOf(user.email, id),
      record,
      Math.ceil(this.o.ttlMs / 1000),
    );
    const token = jwt.sign(
      {
        sub: user.email,
        jti: id,
        iat: Math.floor(now / 1000),
        exp: Math.floor(record.expiresAt / 1000),
      },
      this.o.secret,
      { algorithm: 'HS256', issuer: ISSUER, audience: AUDIENCE },
    );
    return { token, session: { id, ...record } };
  }

  /** The live session a token stands for, or why there is none. */
  async read(
    token: string | undefined,
  ): Promise<
    { session: Session; problem?: undefined } | { session?: undefined; problem: SessionProblem }
  > {
    if (!token) return { problem: 'missing' };
    let claims: jwt.JwtPayload;
    try {
      const verified = jwt.verify(token, this.o.secret, {
        algorithms: ['HS256'],
        issuer: ISSUER,
        audience: AUDIENCE,
        clockTimestamp: Math.floor(this.now() / 1000),
      });
      if (typeof verified === 'string') return { problem: 'invalid' };
      claims = verified;
    } catch (err) {
      return { problem: (err as Error).name === 'TokenExpiredError' ? 'expired' : 'invalid' };
    }
    if (typeof claims.sub !== 'string' || typeof claims.jti !== 'string') {
      return { problem: 'invalid' };
    }
    const record = (await this.o.store.kvGet(
      SSO_SESSIONS_NAMESPACE,
      keyOf(claims.sub, claims.jti),
    )) as SessionRecord | undefined;
    if (!record || typeof record !== 'object') return { problem: 'ended' };
    if (record.expiresAt <= this.now()) return { problem: 'expired' };
    return { session: { id: claims.jti, ...record } };
  }

  /** Signing out: the token stops working here and on every replica. */
  async end(session: Pick<Session, 'email' | 'id'>): Promise<void> {
    await this.o.store.kvDelete(SSO_SESSIONS_NAMESPACE, keyOf(session.email, session.id));
  }

  /** Every live session of one user. */
  async listFor(email: string): Promise<Session[]> {
    const rows = await this.o.store.kvList(SSO_SESSIONS_NAMESPACE, { prefix: `${email}:` });
    return rows.map((r) => ({
      id: r.key.slice(email.length + 1),
      ...(r.value as SessionRecord),
    }));
  }

  /** Ends every session of one user; returns how many there were. */
  async endAll(email: string): Promise<number> {
    const rows = await this.o.store.kvList(SSO_SESSIONS_NAMESPACE, { prefix: `${email}:` });
    for (const r of rows) await this.o.store.kvDelete(SSO_SESSIONS_NAMESPACE, r.key);
    return rows.length;
  }

  cookieOptions(): CookieOptions {
    return {
      httpOnly: true,
      // Lax: the cookie comes along when a person follows a link to the
      // relay, never on a cross-site POST (the forms' first defence).
      sameSite: 'lax',
      secure: this.o.secure,
      path: '/',
      maxAge: this.o.ttlMs,
    };
  }

  clearCookieOptions(): CookieOptions {
    const { maxAge: _maxAge, ...rest } = this.cookieOptions();
    return rest;
  }
}

/** Constant-time comparison of a submitted CSRF token with the session's. */
export function csrfMatches(session: Pick<SessionRecord, 'csrf'>, given: unknown): boolean {
  if (typeof given !== 'string' || given.length === 0 || given.length > 200) return false;
  // Hash first: equal lengths for timingSafeEqual, and no early exit on length.
  const a = createHash('sha256').update(session.csrf).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}
