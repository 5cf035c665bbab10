import { isIPv4, isIPv6 } from 'node:net';
import type { Request } from 'express';
import type { Store } from '../store/types';

/**
 * The per-address limit of the unauthenticated sign-in endpoints. Each
 * request counts one hit in the store's shared fixed-window counter
 * (`rateHit`), so the limit holds across replicas and restarts, and a
 * request over it writes nothing else: no flow, no audit entry.
 */

const WINDOW_SECONDS = 60;
/** Rate counters are shared with plugins: a prefix of the relay's own. */
const KEY_PREFIX = '_relay:sso-sign-in:';

/**
 * The client's address as express sees it: the socket's peer, or what the
 * proxies named by `trustProxy` say. An IPv4 address mapped into IPv6
 * (`::ffff:10.1.2.3`) is the IPv4 address.
 */
export function clientAddress(req: Request): string {
  const ip = req.ip ?? req.socket.remoteAddress ?? '';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  if (mapped) return mapped;
  return isIPv4(ip) || isIPv6(ip) ? ip.toLowerCase() : 'unknown';
}

/** The eight 16-bit groups of an IPv6 address. */
function ipv6Groups(address: string): number[] {
  let text = address.split('%')[0] as string;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((g) => parseInt(g, 16));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/**
 * What the limit counts by: an IPv4 address, or the IPv6 network of
 * `ipv6Prefix` bits holding the address (a host usually owns a whole /64,
 * so counting single IPv6 addresses would not limit anyone).
 */
export function limitKey(address: string, ipv6Prefix: number): string {
  if (!isIPv6(address)) return address;
  const groups = ipv6Groups(address);
  const out: string[] = [];
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, ipv6Prefix - i * 16));
    const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
    out.push(((groups[i] ?? 0) & mask).toString(16));
  }
  return `${out.join(':')}/${ipv6Prefix}`;
}

export interface SignInRateLimitOptions {
  store: Store;
  /** Requests one address (IPv6: one network) may make per minute. */
  perMinute: number;
  ipv6Prefix: number;
  /** The store's clock, for the Retry-After; default `Date.now`. */
  now?: () => number;
}

export type RateDecision =
  | { limited: false }
  | {
      limited: true;
      /** Seconds until the window ends, at least 1. */
      retryAfter: number;
      /** The first request over the limit in this window (log it once). */
      first: boolean;
    };

export class SignInRateLimit {
  private readonly now: () => number;

  constructor(private readonly o: SignInRateLimitOptions) {
    this.now = o.now ?? Date.now;
  }

  async hit(address: string): Promise<RateDecision> {
    const n = await this.o.store.rateHit(
      KEY_PREFIX + limitKey(address, this.o.ipv6Prefix),
      WINDOW_SECONDS,
    );
    if (n <= this.o.perMinute) return { limited: false };
    const windowMs = WINDOW_SECONDS * 1000;
    const left = windowMs - (this.now() % windowMs);
    return {
      limited: true,
      retryAfter: Math.max(1, Math.ceil(left / 1000)),
      first: n === this.o.perMinute + 1,
    };
  }
}
