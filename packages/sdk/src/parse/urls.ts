// Event payloads name their project only by numeric id and their organisation
// not at all; the slugs users recognise are in the links Sentry puts next to
// them, so they are recovered from the URL paths.

function parseUrl(value: string | undefined): URL | undefined {
  if (value === undefined) return undefined;
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

function segment(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** `…/api/0/projects/<org>/<project>/events/<id>/` → the two slugs. */
export function slugsFromEventApiUrl(
  value: string | undefined,
): { organization: string; project: string } | undefined {
  const url = parseUrl(value);
  const match = url && /\/api\/0\/projects\/([^/]+)\/([^/]+)\/events\//.exec(url.pathname);
  const organization = segment(match?.[1]);
  const project = segment(match?.[2]);
  return organization && project ? { organization, project } : undefined;
}

// Region hosts of sentry.io: `us.sentry.io` is an API host, never an organisation.
const NOT_ORGANIZATION_HOSTS = new Set(['www', 'us', 'de', 'api', 'docs']);

/**
 * The organisation of a browser link: `/organizations/<org>/…` (classic and
 * self-hosted), else the customer domain `<org>.sentry.io`.
 */
export function organizationFromWebUrl(value: string | undefined): string | undefined {
  const url = parseUrl(value);
  if (!url) return undefined;
  const fromPath = segment(/^\/organizations\/([^/]+)\//.exec(url.pathname)?.[1]);
  if (fromPath) return fromPath;
  const host = /^([a-z0-9-]+)\.sentry\.io$/i.exec(url.hostname)?.[1]?.toLowerCase();
  return host && !NOT_ORGANIZATION_HOSTS.has(host) ? host : undefined;
}

/** An event's browser link minus its `events/<id>/` tail: the issue's browser link. */
export function issueUrlFromEventWebUrl(value: string | undefined): string | undefined {
  const url = parseUrl(value);
  if (!url || !/\/issues\/[^/]+\/events\/[^/]+\/?$/.test(url.pathname)) return undefined;
  url.pathname = url.pathname.replace(/events\/[^/]+\/?$/, '');
  url.search = '';
  url.hash = '';
  return url.toString();
}
