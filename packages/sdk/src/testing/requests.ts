/** One HTTP request a notifier sent, as a test wants to assert on it. */
export interface RecordedRequest {
  /** Upper-case, e.g. `POST`. */
  method: string;
  /** The absolute URL, query included. */
  url: string;
  /** Path and query, e.g. `/hook?token=abc`. */
  path: string;
  /** Lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The body parsed as JSON when it is JSON, else the raw string (`''` when empty). */
  body: unknown;
  /** The body exactly as sent, for signature checks. */
  rawBody: string;
}

export function normaliseHeaders(
  entries: Iterable<[string, string | number | readonly string[] | undefined]>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of entries) {
    if (value === undefined) continue;
    const text = Array.isArray(value) ? value.join(', ') : String(value);
    const key = name.toLowerCase();
    out[key] = out[key] === undefined ? text : `${out[key]}, ${text}`;
  }
  return out;
}

/**
 * JSON when the content type says so, or says nothing and the text parses;
 * never for other declared types (a form body that happens to be `"1"`).
 */
export function parseBody(rawBody: string, contentType: string | undefined): unknown {
  if (rawBody === '') return '';
  if (contentType !== undefined && !/\bjson\b/i.test(contentType)) return rawBody;
  try {
    return JSON.parse(rawBody) as unknown;
  } catch {
    return rawBody;
  }
}

export function recordedRequest(
  method: string,
  url: string,
  headers: Record<string, string>,
  rawBody: string,
): RecordedRequest {
  let path = url;
  try {
    const parsed = new URL(url);
    path = parsed.pathname + parsed.search;
  } catch {
    // Not absolute: keep what we were given.
  }
  return {
    method: method.toUpperCase(),
    url,
    path,
    headers,
    body: parseBody(rawBody, headers['content-type']),
    rawBody,
  };
}
