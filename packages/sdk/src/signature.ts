import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureCheck =
  | { ok: true }
  | { ok: false; code: 'PB_SIGNATURE_MISSING' | 'PB_SIGNATURE_INVALID'; reason: string };

const HEX_SHA256 = /^[0-9a-f]{64}$/i;

function toBytes(rawBody: Buffer | Uint8Array | string): Buffer {
  if (typeof rawBody === 'string') return Buffer.from(rawBody, 'utf8');
  if (Buffer.isBuffer(rawBody)) return rawBody;
  return Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
}

function hmac(bytes: Buffer, secret: string): Buffer {
  return createHmac('sha256', secret).update(bytes).digest();
}

function invalid(reason: string): SignatureCheck {
  return { ok: false, code: 'PB_SIGNATURE_INVALID', reason };
}

/**
 * Verify `Sentry-Hook-Signature`: lowercase hex HMAC-SHA256 of the exact body
 * bytes keyed with the integration's client secret, compared in constant time.
 *
 * Pass every secret currently valid (old and new while rotating); any match
 * passes. Hex case is not significant: the header is decoded to its 32 bytes
 * and those are compared, so `ABC…` and `abc…` name the same signature and
 * accepting both gives an attacker nothing. Sentry itself sends lowercase.
 *
 * Reasons never echo the expected signature or a secret: they end up in logs
 * and in the HTTP answer to whoever sent the request.
 */
export function verifySentrySignature(
  rawBody: Buffer | Uint8Array | string,
  signatureHeader: string | string[] | undefined,
  secret: string | readonly string[],
): SignatureCheck {
  const first = Array.isArray(signatureHeader) ? signatureHeader[0] : signatureHeader;
  const signature = typeof first === 'string' ? first.trim() : '';
  if (signature === '') {
    return {
      ok: false,
      code: 'PB_SIGNATURE_MISSING',
      reason: 'Sentry-Hook-Signature header missing or empty',
    };
  }
  // An empty key would make the signature computable by anyone; fail closed.
  const secrets = (typeof secret === 'string' ? [secret] : [...secret]).filter(
    (s): s is string => typeof s === 'string' && s !== '',
  );
  if (secrets.length === 0) return invalid('no client secret configured to verify against');
  if (signature.length !== 64) {
    return invalid(`signature must be 64 hex characters, got ${signature.length}`);
  }
  if (!HEX_SHA256.test(signature)) return invalid('signature is not hexadecimal');

  const received = Buffer.from(signature, 'hex');
  const bytes = toBytes(rawBody);
  // Check every secret, not just until the first match, so the time taken
  // does not reveal which of the rotated secrets signed the request.
  let matched = false;
  for (const key of secrets) {
    if (timingSafeEqual(hmac(bytes, key), received)) matched = true;
  }
  if (matched) return { ok: true };
  return invalid(
    secrets.length === 1
      ? 'signature does not match the body and the client secret'
      : `signature does not match the body and any of the ${secrets.length} client secrets`,
  );
}

/** The signature Sentry would send for these body bytes. */
export function signSentryBody(rawBody: Buffer | Uint8Array | string, secret: string): string {
  return hmac(toBytes(rawBody), secret).toString('hex');
}
