import { createHash } from 'node:crypto';
import type { Response } from 'express';

/**
 * Server-rendered HTML for the relay's pages: strings built with `html`,
 * where every interpolated value is escaped unless it is itself `Html`. No
 * template engine, no script: the pages work without JavaScript.
 */

/** Markup that is already safe to insert. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function escapeHtml(value: unknown): string {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

type Part = Html | string | number | boolean | null | undefined | readonly Part[];

function render(part: Part): string {
  if (part === null || part === undefined || part === false) return '';
  if (part instanceof Html) return part.value;
  if (Array.isArray(part)) return (part as readonly Part[]).map(render).join('');
  return escapeHtml(part);
}

/** Tagged template: `html\`<p>${userText}</p>\``; arrays are joined. */
export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

/**
 * A table with one header row. With `empty`, a table without rows shows it
 * in a single full-width row instead of staying blank.
 */
export function table(headers: readonly string[], rows: readonly Html[], empty?: string): Html {
  const body =
    rows.length > 0 || empty === undefined
      ? rows
      : html`<tr>
          <td colspan="${headers.length}">${empty}</td>
        </tr>`;
  return html`<table>
    <thead>
      <tr>
        ${headers.map((h) => html`<th>${h}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${body}
    </tbody>
  </table>`;
}

const CSS = `
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2327;background:#f6f7f7}
header{background:#1d2327;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none}header a[aria-current]{text-decoration:underline}
header .who{margin-left:auto;display:flex;gap:.6rem;align-items:center}
header form{margin:0}
main{max-width:72rem;margin:1.2rem auto;padding:0 1.2rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #dcdcde;padding:.35rem .5rem;text-align:left;vertical-align:top}
.notice{background:#fff;border-left:4px solid #2271b1;padding:.6rem .9rem;margin:1rem 0}
.error{border-left-color:#d63638}
.button,button{display:inline-block;padding:.4rem .9rem;border:1px solid #2271b1;background:#2271b1;color:#fff;border-radius:3px;text-decoration:none;font:inherit;cursor:pointer}
header button{background:transparent;border-color:#fff}
code{background:#f0f0f1;padding:0 .25rem}
.providers{display:flex;flex-direction:column;gap:.6rem;max-width:22rem}
`;

/** The stylesheet is inline; the policy allows exactly it, by hash. */
const CSS_HASH = createHash('sha256').update(CSS).digest('base64');
/** Built here, not in the layout's template, so that the hashed text is exactly the element's. */
const STYLE = new Html(`<style>${CSS}</style>`);

/**
 * No script, nothing from other origins, no framing; forms post back to the
 * relay only. Sign-in buttons are links, not forms: Chromium applies
 * `form-action` to the redirect to the identity provider.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src 'sha256-${CSS_HASH}'`,
  "img-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export interface NavUser {
  email: string;
  role: string;
  csrf: string;
}

export interface PageOptions {
  title: string;
  user?: NavUser;
  /** The path of the page, to mark the current nav link. */
  current?: string;
  body: Html;
}

function navLink(href: string, label: string, current: string | undefined): Html {
  return html`<a href="${href}" ${current === href ? new Html('aria-current="page"') : ''}
    >${label}</a
  >`;
}

/** The shared layout: nav (what the person may open), sign-out button, content. */
export function layout(o: PageOptions): Html {
  const u = o.user;
  const nav = u
    ? [
        navLink('/me/notifications', 'My notifications', o.current),
        u.role === 'admin'
          ? [
              navLink('/admin/deliveries', 'Deliveries', o.current),
              navLink('/admin/plugins', 'Plugins', o.current),
              navLink('/admin/silences', 'Silences', o.current),
              navLink('/admin/users', 'Users', o.current),
              navLink('/admin/audit', 'Audit log', o.current),
            ]
          : [],
        html`<span class="who"
          ><span>${u.email} (${u.role})</span>
          <form method="post" action="/logout">
            <input type="hidden" name="_csrf" value="${u.csrf}" /><button type="submit">
              Sign out
            </button>
          </form></span
        >`,
      ]
    : [];
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${o.title} · Plugboard relay</title>
        ${STYLE}
      </head>
      <body>
        <header><strong>Plugboard relay</strong>${nav}</header>
        <main>
          <h1>${o.title}</h1>
          ${o.body}
        </main>
      </body>
    </html>`;
}

/** Send a page with the headers every page carries. */
export function sendPage(res: Response, status: number, page: Html): void {
  res
    .status(status)
    .set({
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'same-origin',
      // Pages show personal settings and the delivery log.
      'cache-control': 'no-store',
    })
    .send(page.value);
}

export function formatTime(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '';
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}
