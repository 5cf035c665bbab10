import { createHash, createHmac } from 'node:crypto';
import type { AxiosInstance, InternalAxiosRequestConfig } from 'axios';

/** What a signer sees of one outgoing request. */
export interface SignableRequest {
  /** Upper-case, e.g. `POST`. */
  method: string;
  /** Path and query as sent on the wire, e.g. `/open/api/messages?x=1`. */
  path: string;
  /** The full URL. */
  url: string;
  /** The body exactly as sent ('' when there is none). */
  body: string;
  /** The moment of signing (one clock read per request). */
  date: Date;
}

/** Signs requests: returns the headers to add. Synchronous or async. */
export interface RequestSigner {
  sign(request: SignableRequest): Record<string, string> | Promise<Record<string, string>>;
}

/**
 * The seed's company scheme: a `Date` header (RFC 1123) and
 * `Authorization: MWS <clientId>:<base64(HMAC-SHA1(secret, "<METHOD> <path>\n<Date>"))>`.
 */
export function mwsSigner(options: {
  clientId: string;
  clientSecret: string;
  /** The word before the credentials; default `MWS`. */
  scheme?: string;
}): RequestSigner {
  const scheme = options.scheme ?? 'MWS';
  return {
    sign(req) {
      const date = req.date.toUTCString();
      const signature = createHmac('sha1', options.clientSecret)
        .update(`${req.method} ${req.path}\n${date}`)
        .digest('base64');
      return { Date: date, Authorization: `${scheme} ${options.clientId}:${signature}` };
    },
  };
}

export interface HmacSha256SignerOptions {
  clientId: string;
  clientSecret: string;
  /**
   * String to sign, with placeholders `{method}`, `{path}`, `{date}` (RFC 1123),
   * `{timestamp}` (Unix seconds), `{clientId}`, `{bodySha256}` (hex); `\n` is a newline.
   * A string that signs `{date}` sends that date in a `Date` header.
   */
  stringToSign?: string;
  /** Header carrying the hex HMAC-SHA256; default `X-Signature`. */
  signatureHeader?: string;
  /** Header carrying the client id; default `X-Client-Id`. */
  clientIdHeader?: string;
  /** Header carrying `{timestamp}`; default `X-Timestamp`. */
  timestampHeader?: string;
}

export const DEFAULT_HMAC_STRING_TO_SIGN = '{method}\\n{path}\\n{timestamp}\\n{bodySha256}';

/** A generic scheme: hex HMAC-SHA256 of a configurable string, in configurable headers. */
export function hmacSha256Signer(options: HmacSha256SignerOptions): RequestSigner {
  const template = options.stringToSign || DEFAULT_HMAC_STRING_TO_SIGN;
  return {
    sign(req) {
      const timestamp = String(Math.floor(req.date.getTime() / 1000));
      const values: Record<string, string> = {
        method: req.method,
        path: req.path,
        date: req.date.toUTCString(),
        timestamp,
        clientId: options.clientId,
        bodySha256: createHash('sha256').update(req.body).digest('hex'),
      };
      const text = template
        .replace(/\\n/g, '\n')
        .replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole);
      const signature = createHmac('sha256', options.clientSecret).update(text).digest('hex');
      return {
        // The server can only check a signed date it is sent.
        ...(/\{date\}/.test(template) ? { Date: values.date as string } : {}),
        [options.clientIdHeader || 'X-Client-Id']: options.clientId,
        [options.timestampHeader || 'X-Timestamp']: timestamp,
        [options.signatureHeader || 'X-Signature']: signature,
      };
    },
  };
}

/**
 * Sign every request of an axios instance, as a request interceptor. The
 * body must be sent as a string (it is signed as is), so pass JSON text and
 * no `transformRequest` changes it.
 */
export function installSigner(
  instance: AxiosInstance,
  signer: RequestSigner,
  now: () => Date = () => new Date(),
): void {
  instance.interceptors.request.use(async (config: InternalAxiosRequestConfig) => {
    const url = new URL(instance.getUri(config));
    const body =
      config.data === undefined || config.data === null
        ? ''
        : typeof config.data === 'string'
          ? config.data
          : JSON.stringify(config.data);
    const headers = await signer.sign({
      method: (config.method ?? 'get').toUpperCase(),
      path: `${url.pathname}${url.search}`,
      url: url.toString(),
      body,
      date: now(),
    });
    for (const [name, value] of Object.entries(headers)) config.headers.set(name, value);
    return config;
  });
}
