import { createHmac } from 'node:crypto';

/** Prefix of a Standard Webhooks secret: the rest is the key, base64-encoded. */
export const SECRET_PREFIX = 'whsec_';

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The HMAC key a secret stands for. `whsec_<base64>` (what Standard Webhooks
 * libraries generate and expect) is decoded; any other string is used as its
 * UTF-8 bytes, so a receiver verifying with a plain shared string
 * (`createHmac('sha256', 'my secret')`) works too.
 */
export function signingKey(secret: string): Buffer {
  return secret.startsWith(SECRET_PREFIX)
    ? Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64')
    : Buffer.from(secret, 'utf8');
}

/** A problem with the secret's form, never quoting the secret. */
export function checkSecret(secret: string): string | undefined {
  if (!secret.startsWith(SECRET_PREFIX)) return undefined;
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (encoded === '' || !BASE64.test(encoded) || encoded.length % 4 === 1) {
    return `the part after "${SECRET_PREFIX}" must be base64 (value hidden)`;
  }
  return undefined;
}

/**
 * `webhook-signature` per Standard Webhooks: `v1,` and the base64
 * HMAC-SHA256 of `<msg id>.<unix seconds>.<body>`.
 */
export function signWebhook(key: Buffer, msgId: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', key).update(`${msgId}.${timestamp}.${body}`).digest('base64');
  return `v1,${mac}`;
}
