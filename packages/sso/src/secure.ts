import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** 256 random bits, base64url: flow ids, `state` values, nonces. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Compares two secret strings in time independent of where they differ.
 * Both sides are hashed first so that their lengths leak nothing either.
 */
export function constantTimeEqual(a: string | undefined, b: string | undefined): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  // The hash compare is the constant-time part; the length check only rules
  // out the (astronomically unlikely) collision of different strings.
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

/** SHA-256, base64url: how a flow id is stored, so the store never holds the cookie value. */
export function digest(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}
