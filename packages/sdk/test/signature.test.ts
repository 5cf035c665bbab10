import * as crypto from 'node:crypto';
import { compactSentryJson, loadSample } from '../src/samples';
import { signSentryBody, verifySentrySignature } from '../src/signature';

const SECRET = 'b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2';
const OLD_SECRET = '0f9e8d7c6b5a49382716051f2e3d4c5b6a7980a1b2c3d4e5f60718293a4b5c6d';

/** The signature computed independently of the code under test. */
function hmacHex(bytes: Buffer | string, secret: string): string {
  return crypto.createHmac('sha256', secret).update(bytes).digest('hex');
}

// A body as Sentry puts it on the wire: compact, non-ASCII as \u escapes,
// floats as Python writes them. Written out by hand rather than produced by
// the serialiser under test.
const BODY =
  '{"action":"triggered","data":{"event":{"event_id":"e4874d664c3540c1a32eab185f12c5ab",' +
  '"title":"Fehler: Datei nicht gefunden \\u2013 \\u00fc\\u20ac\\ud83d\\ude00",' +
  '"received":1566248777.677,"big":1e+21,"tenth":0.1,"one":1.0,"large":1e+16}},' +
  '"installation":{"uuid":"a8e5d37a-696c-4c54-adb5-b3f28d64c7de"}}';
const BODY_BYTES = Buffer.from(BODY, 'utf8');
const SIGNATURE = hmacHex(BODY_BYTES, SECRET);

describe('signSentryBody', () => {
  it('is the lowercase hex HMAC-SHA256 of the body bytes', () => {
    expect(signSentryBody(BODY_BYTES, SECRET)).toBe(SIGNATURE);
    expect(SIGNATURE).toMatch(/^[0-9a-f]{64}$/);
  });

  it('treats a string body as UTF-8 bytes', () => {
    const text = 'Fehler – ü€😀';
    expect(signSentryBody(text, SECRET)).toBe(hmacHex(Buffer.from(text, 'utf8'), SECRET));
    expect(signSentryBody(text, SECRET)).not.toBe(hmacHex(Buffer.from(text, 'latin1'), SECRET));
  });
});

describe('verifySentrySignature', () => {
  it('accepts the signature of the exact bytes, as Buffer, string or Uint8Array view', () => {
    expect(verifySentrySignature(BODY_BYTES, SIGNATURE, SECRET)).toEqual({ ok: true });
    expect(verifySentrySignature(BODY, SIGNATURE, SECRET)).toEqual({ ok: true });
    // A view into a larger buffer, as a streaming body parser may hand over.
    const padded = new Uint8Array(BODY_BYTES.length + 8);
    padded.set(BODY_BYTES, 4);
    const view = padded.subarray(4, 4 + BODY_BYTES.length);
    expect(verifySentrySignature(view, SIGNATURE, SECRET)).toEqual({ ok: true });
  });

  it('rejects a re-serialisation of the same JSON: only the received bytes verify', () => {
    const reserialised = JSON.stringify(JSON.parse(BODY));
    // Escapes become raw UTF-8, 1.0 becomes 1, 1e+16 is written out in full.
    expect(reserialised).not.toBe(BODY);
    expect(reserialised).toContain('ü€😀');
    expect(reserialised).toContain('"one":1,');
    expect(reserialised).toContain('"large":10000000000000000');
    expect(verifySentrySignature(reserialised, SIGNATURE, SECRET)).toMatchObject({
      ok: false,
      code: 'PB_SIGNATURE_INVALID',
    });
    // Matching Sentry's separators and escaping is not enough either: numbers differ.
    expect(compactSentryJson(JSON.parse(BODY))).not.toBe(BODY);
    expect(verifySentrySignature(compactSentryJson(JSON.parse(BODY)), SIGNATURE, SECRET).ok).toBe(
      false,
    );
  });

  it('verifies a real sample sent the way the relay test command sends it', () => {
    const sample = loadSample('event_alert.triggered');
    const wire = compactSentryJson(sample.body);
    const signature = hmacHex(Buffer.from(wire, 'utf8'), SECRET);
    expect(verifySentrySignature(Buffer.from(wire, 'utf8'), signature, SECRET)).toEqual({
      ok: true,
    });
    expect(verifySentrySignature(sample.pretty, signature, SECRET).ok).toBe(false);
  });

  it('rejects the wrong secret without revealing the expected signature or the secret', () => {
    const check = verifySentrySignature(BODY_BYTES, hmacHex(BODY_BYTES, 'wrong'), SECRET);
    expect(check).toEqual({
      ok: false,
      code: 'PB_SIGNATURE_INVALID',
      reason: 'signature does not match the body and the client secret',
    });
  });

  it('rejects a body changed by one byte', () => {
    const tampered = Buffer.from(BODY.replace('0.1', '0.2'), 'utf8');
    expect(verifySentrySignature(tampered, SIGNATURE, SECRET).ok).toBe(false);
  });

  it.each([
    ['undefined', undefined],
    ['empty', ''],
    ['blank', '   '],
    ['an empty list', []],
    ['a list starting with an empty value', ['', SIGNATURE]],
  ])('a header that is %s is PB_SIGNATURE_MISSING', (_what, header) => {
    expect(
      verifySentrySignature(BODY_BYTES, header as string | string[] | undefined, SECRET),
    ).toEqual({
      ok: false,
      code: 'PB_SIGNATURE_MISSING',
      reason: 'Sentry-Hook-Signature header missing or empty',
    });
  });

  it('takes the first value of a repeated header', () => {
    expect(verifySentrySignature(BODY_BYTES, [SIGNATURE, 'x'.repeat(64)], SECRET).ok).toBe(true);
    expect(verifySentrySignature(BODY_BYTES, ['f'.repeat(64), SIGNATURE], SECRET).ok).toBe(false);
  });

  // Choice: hex case is not significant. The header is decoded to its 32 bytes
  // and those are compared, so upper case names the same signature and
  // accepting it costs no security; Sentry itself sends lower case.
  it('accepts upper-case hex', () => {
    expect(verifySentrySignature(BODY_BYTES, SIGNATURE.toUpperCase(), SECRET)).toEqual({
      ok: true,
    });
  });

  it.each([
    ['truncated', SIGNATURE.slice(0, 63), 'signature must be 64 hex characters, got 63'],
    ['half', SIGNATURE.slice(0, 32), 'signature must be 64 hex characters, got 32'],
    ['too long', `${SIGNATURE}00`, 'signature must be 64 hex characters, got 66'],
    ['not hex', `${SIGNATURE.slice(0, 62)}zz`, 'signature is not hexadecimal'],
    ['prefixed (sha256=…)', `sha256=${SIGNATURE}`, 'signature must be 64 hex characters, got 71'],
  ])('a %s signature is PB_SIGNATURE_INVALID', (_what, header, reason) => {
    expect(verifySentrySignature(BODY_BYTES, header, SECRET)).toEqual({
      ok: false,
      code: 'PB_SIGNATURE_INVALID',
      reason,
    });
  });

  it('never puts the expected signature or a secret in a reason', () => {
    const headers = [hmacHex(BODY_BYTES, 'other'), SIGNATURE.slice(0, 10), 'zz', undefined];
    for (const header of headers) {
      const check = verifySentrySignature(BODY_BYTES, header, [OLD_SECRET, SECRET]);
      expect(check.ok).toBe(false);
      const text = JSON.stringify(check);
      for (const leaked of [SIGNATURE, hmacHex(BODY_BYTES, OLD_SECRET), SECRET, OLD_SECRET]) {
        expect(text).not.toContain(leaked);
        expect(text).not.toContain(leaked.slice(0, 16));
      }
    }
  });

  describe('secret rotation', () => {
    it('accepts a signature made with any listed secret', () => {
      const secrets = [OLD_SECRET, SECRET];
      expect(verifySentrySignature(BODY_BYTES, SIGNATURE, secrets).ok).toBe(true);
      expect(verifySentrySignature(BODY_BYTES, hmacHex(BODY_BYTES, OLD_SECRET), secrets).ok).toBe(
        true,
      );
    });

    it('rejects a secret that was rotated out', () => {
      const check = verifySentrySignature(BODY_BYTES, hmacHex(BODY_BYTES, OLD_SECRET), [SECRET]);
      expect(check).toMatchObject({ ok: false, code: 'PB_SIGNATURE_INVALID' });
      const both = verifySentrySignature(BODY_BYTES, hmacHex(BODY_BYTES, 'third'), [
        OLD_SECRET,
        SECRET,
      ]);
      expect(both).toEqual({
        ok: false,
        code: 'PB_SIGNATURE_INVALID',
        reason: 'signature does not match the body and any of the 2 client secrets',
      });
    });

    it('fails closed when no usable secret is configured', () => {
      // With an empty key anyone could compute a valid signature.
      const signedWithEmptyKey = hmacHex(BODY_BYTES, '');
      for (const secrets of ['', [], ['']]) {
        expect(verifySentrySignature(BODY_BYTES, signedWithEmptyKey, secrets)).toEqual({
          ok: false,
          code: 'PB_SIGNATURE_INVALID',
          reason: 'no client secret configured to verify against',
        });
      }
      // An empty entry next to a real secret is ignored, not used as a key.
      expect(verifySentrySignature(BODY_BYTES, signedWithEmptyKey, ['', SECRET]).ok).toBe(false);
      expect(verifySentrySignature(BODY_BYTES, SIGNATURE, ['', SECRET]).ok).toBe(true);
    });
  });

  it('compares in constant time, on equal-length buffers, against every secret', () => {
    // The core module object itself: an `import * as` namespace is a frozen copy.
    const nodeCrypto = require('node:crypto') as typeof crypto;
    const spy = jest.spyOn(nodeCrypto, 'timingSafeEqual');
    try {
      verifySentrySignature(BODY_BYTES, SIGNATURE, [OLD_SECRET, SECRET, 'third']);
      expect(spy).toHaveBeenCalledTimes(3);
      for (const [a, b] of spy.mock.calls) {
        expect((a as Buffer).length).toBe(32);
        expect((b as Buffer).length).toBe(32);
      }
    } finally {
      spy.mockRestore();
    }
  });
});
