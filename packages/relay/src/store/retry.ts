/**
 * Retrying a store write whose failure says nothing about the write itself
 * (the connection died, the file was locked), so a fresh try may succeed.
 * Shared by both stores; which failures count as transient is theirs to say.
 */

/** The first pause between tries; it doubles up to `RETRY_MAX_DELAY_MS`. */
export const RETRY_FIRST_DELAY_MS = 25;
export const RETRY_MAX_DELAY_MS = 1000;

export interface RetryPolicy<T> {
  /** Whether a fresh try may cure this failure. */
  transient: (err: unknown) => boolean;
  /** No try starts after this moment (real time, `Date.now()`). */
  until: number;
  /** At most this many tries in all. Default: as many as fit before `until`. */
  tries?: number;
  /**
   * Asked before each retry: throw to give up (the last failure, usually),
   * return `{ value }` to resolve with it instead of trying again (the first
   * try turns out to have taken effect), or nothing to try again.
   */
  beforeRetry?: (err: unknown) => Promise<{ value: T } | undefined>;
  /** Stop early (the store is closing). */
  stopped?: () => boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Run `fn`, again on transient failures, with a bounded, doubling pause. */
export async function retryTransient<T>(fn: () => Promise<T>, policy: RetryPolicy<T>): Promise<T> {
  const tries = policy.tries ?? Infinity;
  let delay = RETRY_FIRST_DELAY_MS;
  for (let n = 1; ; n++) {
    try {
      return await fn();
    } catch (err) {
      if (n >= tries || !policy.transient(err) || policy.stopped?.()) throw err;
      if (Date.now() + delay >= policy.until) throw err;
      await sleep(delay);
      delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
      if (policy.stopped?.()) throw err;
      const answered = await policy.beforeRetry?.(err);
      if (answered) return answered.value;
    }
  }
}

/**
 * The real-time moment a lease taken on the store's clock (`leaseUntil`,
 * `now`) runs out. Tests run stores on a frozen clock, so the time left is
 * measured on the store's clock and spent on the real one.
 */
export function leaseDeadline(leaseUntil: number, now: number): number {
  return Date.now() + Math.max(0, leaseUntil - now);
}

/** Codes of `err` and of its causes, outermost first (a store wraps the driver's error). */
export function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    e = (e as { cause?: unknown }).cause;
  }
  return codes;
}

/** Messages of `err` and of its causes, for drivers that raise some errors without a code. */
export function errorMessages(err: unknown): string[] {
  const messages: string[] = [];
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    messages.push(e.message);
    e = e.cause;
  }
  return messages;
}
