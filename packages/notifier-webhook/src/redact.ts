/**
 * How a target URL appears in errors and logs: scheme, host and path only.
 * The query string and the userinfo part often carry tokens
 * (`?token=…`, `https://user:pass@…`), and both end up in delivery records
 * that operators share.
 */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return displayLine(url);
  }
}

/** A config line that is not a URL, shown with the same parts cut out, and bounded. */
export function displayLine(line: string): string {
  const cut = line.replace(/[?#].*$/s, '').replace(/^([^/]*\/\/)?[^/@]*@/, '$1');
  return JSON.stringify(cut.length > 80 ? `${cut.slice(0, 77)}...` : cut);
}

/**
 * Replace every occurrence of the given sensitive strings (secret, header
 * values, query strings, userinfo) in a text that came from a library, so
 * nothing sensitive leaks through an error message we did not write.
 */
export function scrub(text: string, sensitive: readonly string[]): string {
  let out = text;
  for (const value of sensitive) {
    if (value.length >= 3) out = out.split(value).join('[redacted]');
  }
  return out;
}

/** The parts of a URL that must never appear in an error or a log line. */
export function sensitivePartsOf(url: string): string[] {
  try {
    const u = new URL(url);
    return [url, u.search.slice(1), u.username, u.password, u.hash.slice(1)].filter(
      (part) => part !== '',
    );
  } catch {
    return [url];
  }
}
