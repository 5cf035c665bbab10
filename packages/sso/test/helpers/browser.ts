import type { Express } from 'express';
import request, { type Response } from 'supertest';

export interface SetCookie {
  name: string;
  value: string;
  /** Lowercase attribute names; values as sent (`true` for flags). */
  attributes: Record<string, string | true>;
  raw: string;
}

export function parseSetCookie(raw: string): SetCookie {
  const [pair = '', ...attrs] = raw.split(';').map((p) => p.trim());
  const eq = pair.indexOf('=');
  const attributes: Record<string, string | true> = {};
  for (const attr of attrs) {
    const i = attr.indexOf('=');
    if (i === -1) attributes[attr.toLowerCase()] = true;
    else attributes[attr.slice(0, i).toLowerCase()] = attr.slice(i + 1);
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes, raw };
}

export function setCookies(res: Response): SetCookie[] {
  const header = res.headers['set-cookie'] as unknown;
  const list = Array.isArray(header) ? header : typeof header === 'string' ? [header] : [];
  return list.map((raw: string) => parseSetCookie(raw));
}

/**
 * One browser: it keeps the cookies the router sets (deleting expired ones)
 * and sends them back, so that two Browser objects are two browsers.
 */
export class Browser {
  readonly cookies = new Map<string, string>();
  last: Response | undefined;

  constructor(private readonly app: Express) {}

  async get(path: string): Promise<Response> {
    return this.track(await this.withCookies(request(this.app).get(path)));
  }

  async post(path: string, form: Record<string, string>): Promise<Response> {
    return this.track(await this.withCookies(request(this.app).post(path).type('form').send(form)));
  }

  /** The value of the flow cookie this browser holds. */
  get flowCookie(): string | undefined {
    return this.cookies.get('pb_sso_flow');
  }

  private withCookies<T extends request.Test>(req: T): T {
    if (this.cookies.size > 0) {
      req.set('Cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    return req;
  }

  private track(res: Response): Response {
    this.last = res;
    for (const cookie of setCookies(res)) {
      const expires = cookie.attributes.expires;
      const expired = typeof expires === 'string' && new Date(expires).getTime() <= Date.now();
      if (expired || cookie.value === '') this.cookies.delete(cookie.name);
      else this.cookies.set(cookie.name, cookie.value);
    }
    return res;
  }
}

/** The path and query of a redirect to this app, or the absolute URL elsewhere. */
export function location(res: Response): URL {
  const value = res.headers.location;
  if (typeof value !== 'string') throw new Error(`no Location header (status ${res.status})`);
  return new URL(value);
}
