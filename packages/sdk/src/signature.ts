export type SignatureCheck =
  | { ok: true }
  | { ok: false; code: 'PB_SIGNATURE_MISSING' | 'PB_SIGNATURE_INVALID'; reason: string };

/**
 * Verify `Sentry-Hook-Signature`: lowercase hex HMAC-SHA256 of the exact body
 * bytes keyed with the integration's client secret, compared in constant time.
 */
export function verifySentrySignature(
  _rawBody: Buffer | Uint8Array | string,
  _signatureHeader: string | string[] | undefined,
  _secret: string | readonly string[],
): SignatureCheck {
  throw new Error('not implemented yet');
}

/** The signature Sentry would send for these body bytes. */
export function signSentryBody(_rawBody: Buffer | Uint8Array | string, _secret: string): string {
  throw new Error('not implemented yet');
}
