import type { Router } from 'express';
import { normalizeEmail } from '../api';
import { parseFilter } from '../deliveries';
import { instanceIdOf } from '../../routing';
import { JOB_STATES, type JobFilter } from '../../store/types';
import { Silences } from '../../noise/silences';
import { AUDIT_MAX_SCAN, type AuditEntry } from '../../auth/audit';
import type { PagesContext } from './context';
import { formField, navUser, queryParam, sessionOf } from './context';
import { formatTime, html, layout, sendPage, table, type Html } from './html';

/**
 * Pages for admins: the delivery log (with every attempt), the plugins the
 * registry found, the silences, the users and their sessions, the sign-in
 * audit log.
 * `requireAdmin` guards all of them (see index.ts).
 */

function page(
  res: Parameters<typeof navUser>[0],
  title: string,
  current: string,
  body: Html,
  status = 200,
): void {
  const user = navUser(res);
  sendPage(res, status, layout({ title, current, body, ...(user ? { user } : {}) }));
}

function instanceIds(ctx: PagesContext): string[] {
  return ctx.config.routes.flatMap((r) => r.instances.map((i) => instanceIdOf(r, i)));
}

export function mountAdmin(router: Router, ctx: PagesContext): void {
  router.get('/admin', (_req, res) => {
    res.redirect(303, '/admin/deliveries');
  });

  router.get('/admin/deliveries', async (req, res, next) => {
    try {
      const state = queryParam(req, 'state') ?? '';
      const instance = queryParam(req, 'instance') ?? '';
      let filter: JobFilter;
      let problem: string | undefined;
      try {
        filter = parseFilter({ state, instance, limit: queryParam(req, 'limit') ?? '100' });
      } catch (err) {
        problem = (err as Error).message;
        filter = { limit: 100 };
      }
      const jobs = await ctx.store.listJobs(filter);
      const stateOptions = ['', ...JOB_STATES].map(
        (s) =>
          html`<option value="${s}" ${s === state ? html`selected` : ''}>${s || 'any'}</option>`,
      );
      const instanceOptions = ['', ...instanceIds(ctx)].map(
        (s) =>
          html`<option value="${s}" ${s === instance ? html`selected` : ''}>${s || 'any'}</option>`,
      );
      const rows = jobs.map(
        (j) =>
          html`<tr data-state="${j.state}">
            <td><a href="/admin/deliveries/${j.id}">${j.id}</a></td>
            <td>${formatTime(j.createdAt)}</td>
            <td>${j.project ?? ''}</td>
            <td><code>${j.instanceId}</code></td>
            <td>${j.state}</td>
            <td>
              ${j.attempts} / ${j.maxAttempts}${j.replays > 0 ? ` (replayed ${j.replays}×)` : ''}
            </td>
            <td>
              ${j.lastError ? html`<code>${j.lastError.code}</code> ${j.lastError.message}` : ''}
            </td>
          </tr>`,
      );
      page(
        res,
        'Deliveries',
        '/admin/deliveries',
        html`${problem ? html`<div class="notice error" role="alert">${problem}</div>` : ''}
          <form method="get" action="/admin/deliveries">
            <label
              >State
              <select name="state">
                ${stateOptions}
              </select></label
            >
            <label
              >Instance
              <select name="instance">
                ${instanceOptions}
              </select></label
            >
            <button type="submit">Filter</button>
          </form>
          <p>
            The newest ${jobs.length}
            deliveries${state ? html` in state <code>${state}</code>` : ''}${
              instance ? html` of <code>${instance}</code>` : ''
            }.
          </p>
          ${table(['Id', 'Created', 'Project', 'Instance', 'State', 'Attempts', 'Last error'], rows, 'No deliveries.')}`,
        problem ? 400 : 200,
      );
    } catch (err) {
      next(err);
    }
  });

  router.get('/admin/deliveries/:id', async (req, res, next) => {
    try {
      const id = String(req.params.id ?? '');
      const job = /^\d+$/.test(id) ? await ctx.store.getJob(id) : undefined;
      if (!job) {
        page(
          res,
          'No such delivery',
          '/admin/deliveries',
          html`<p>There is no delivery <code>${id}</code>.</p>`,
          404,
        );
        return;
      }
      const webhook = await ctx.store.getWebhook(job.webhookId);
      const attempts = await ctx.store.listAttempts(job.id);
      const rows = attempts.map(
        (a) =>
          html`<tr>
            <td>${a.attempt}</td>
            <td>${a.chain}</td>
            <td>${formatTime(a.startedAt)}</td>
            <td>${a.durationMs} ms</td>
            <td>${a.outcome}</td>
            <td>${a.error ? html`<code>${a.error.code}</code> ${a.error.message}` : ''}</td>
          </tr>`,
      );
      page(
        res,
        `Delivery ${job.id}`,
        '/admin/deliveries',
        html`<dl>
            <dt>State</dt>
            <dd>${job.state}</dd>
            <dt>Instance</dt>
            <dd>
              <code>${job.instanceId}</code> (route ${job.routeName}, plugin ${job.pluginSlug})
            </dd>
            <dt>Project</dt>
            <dd>${job.project ?? ''}</dd>
            <dt>Webhook</dt>
            <dd>
              ${webhook ? `${webhook.resource}.${webhook.action}, received ${formatTime(webhook.receivedAt)}` : job.webhookId}
            </dd>
            <dt>Attempts</dt>
            <dd>${job.attempts} of ${job.maxAttempts}</dd>
          </dl>
          ${table(['Attempt', 'Chain', 'Started', 'Took', 'Outcome', 'Error'], rows, 'No attempt yet.')}
          <p><a href="/admin/deliveries">All deliveries</a></p>`,
      );
    } catch (err) {
      next(err);
    }
  });

  router.get('/admin/plugins', (_req, res) => {
    const rows = ctx.plugins().map(
      (d) =>
        html`<tr data-status="${d.status}">
          <td>${d.group}</td>
          <td><code>${d.name}</code></td>
          <td>${d.packageName}${d.packageVersion ? `@${d.packageVersion}` : ''}</td>
          <td>${d.status}</td>
          <td>${d.error ? html`<code>${d.error.code}</code> ${d.error.message}` : ''}</td>
        </tr>`,
    );
    page(
      res,
      'Plugins',
      '/admin/plugins',
      html`<p>
          Every plugin the relay found (builtins, the app's dependencies,
          <code>plugins.packages</code>), with the first error of each one that failed.
        </p>
        ${table(['Group', 'Slug', 'Package', 'Status', 'Error'], rows)}`,
    );
  });

  router.get('/admin/silences', async (req, res, next) => {
    try {
      const all = queryParam(req, 'all') === '1';
      const silences = await new Silences({ store: ctx.store }).list({ all });
      const rows = silences.map(
        (x) =>
          html`<tr data-state="${x.state}">
            <td><code>${x.id}</code></td>
            <td>${x.state}</td>
            <td>${x.matchers.map((m) => html`<code>${m}</code> `)}</td>
            <td>${x.startsAt}</td>
            <td>${x.endsAt}</td>
            <td>${x.createdBy}</td>
            <td>${x.comment}</td>
          </tr>`,
      );
      page(
        res,
        'Silences',
        '/admin/silences',
        html`<p>
            Deliveries matching an active silence are not sent (recorded as
            <code>PB_DELIVERY_SILENCED</code>). Create and expire silences with
            <code>plugboard silences add|expire</code> or <code>/api/silences</code>.
            ${all ? html`<a href="/admin/silences">Active and pending only</a>` : html`<a href="/admin/silences?all=1">Include expired</a>`}
          </p>
          ${table(['Id', 'State', 'Matchers', 'Starts', 'Ends', 'Created by', 'Comment'], rows, 'No silences.')}`,
      );
    } catch (err) {
      next(err);
    }
  });

  router.get('/admin/users', async (req, res, next) => {
    try {
      const users = await ctx.users.list();
      const csrf = sessionOf(res)!.csrf;
      const rows = await Promise.all(
        users.map(async (u) => {
          const live = (await ctx.sessions.listFor(u.email)).length;
          return html`<tr data-email="${u.email}">
            <td>${u.email}</td>
            <td>${u.name ?? ''}</td>
            <td>${u.role}</td>
            <td>
              ${u.identities.map((i) => html`<code>${i.provider}</code>: ${i.subject}<br />`)}
            </td>
            <td>${formatTime(u.lastSignInAt)}</td>
            <td>${live}</td>
            <td>
              <form method="post" action="/admin/users/end-sessions">
                <input type="hidden" name="_csrf" value="${csrf}" />
                <input type="hidden" name="email" value="${u.email}" /><button
                  type="submit"
                  ${live === 0 ? html`disabled` : ''}
                >
                  End all sessions
                </button>
              </form>
            </td>
          </tr>`;
        }),
      );
      const ended = queryParam(req, 'ended');
      page(
        res,
        'Users',
        '/admin/users',
        html`${
            ended
              ? html`<div class="notice" role="status">
                  Ended ${queryParam(req, 'count') ?? '0'} session(s) of ${ended}.
                </div>`
              : ''
          }
          <p>
            Everyone who signed in. The role is set at each sign-in from <code>sso.admins</code>.
          </p>
          ${table(['E-mail', 'Name', 'Role', 'Identities', 'Last sign-in', 'Live sessions', ''], rows, 'Nobody yet.')}`,
      );
    } catch (err) {
      next(err);
    }
  });

  router.post('/admin/users/end-sessions', async (req, res, next) => {
    try {
      const email = normalizeEmail(formField(req, 'email') ?? '');
      if (!email) {
        page(
          res,
          'Users',
          '/admin/users',
          html`<div class="notice error" role="alert">No such user.</div>`,
          400,
        );
        return;
      }
      const count = await ctx.sessions.endAll(email);
      const actor = sessionOf(res)!.email;
      await ctx.audit.record({ event: 'sessions_ended', outcome: 'success', email, actor, count });
      ctx.logger.info({ email, actor, count }, 'sso: sessions ended by an admin');
      // Ending one's own sessions signs one out too: the next page says so.
      res.redirect(
        303,
        `/admin/users?ended=${encodeURIComponent(email)}&count=${encodeURIComponent(String(count))}`,
      );
    } catch (err) {
      next(err);
    }
  });

  router.get('/admin/audit', async (req, res, next) => {
    try {
      const pageNo = pageNumber(queryParam(req, 'page'), AUDIT_PAGE_SIZE);
      const { entries, more } = await ctx.audit.page(pageNo, AUDIT_PAGE_SIZE);
      const rows = entries.map(
        (e) =>
          html`<tr
            data-event="${e.event}"
            ${e.count !== undefined ? html`data-count="${e.count}"` : ''}
          >
            <td>${formatTime(e.at)}</td>
            <td>${e.event}</td>
            <td>${e.outcome}</td>
            <td>${e.provider ?? ''}</td>
            <td>${e.email ?? ''}</td>
            <td>${e.address ?? ''}</td>
            <td>${e.code ? html`<code>${e.code}</code>` : ''}</td>
            <td>${e.reason ?? ''}</td>
            <td>${auditDetails(e)}</td>
          </tr>`,
      );
      const pager = html`<nav class="pager" aria-label="Audit log pages">
        ${pageNo > 1 ? html`<a id="audit-newer" href="/admin/audit?page=${pageNo - 1}">Newer</a>` : ''}
        <span id="audit-page">Page ${pageNo}</span>
        ${more ? html`<a id="audit-older" href="/admin/audit?page=${pageNo + 1}">Older</a>` : ''}
      </nav>`;
      page(
        res,
        'Audit log',
        '/admin/audit',
        html`<p>
            Sign-ins, refusals, linked identities, sign-outs and ended sessions, newest first (kept
            90 days). Identical refusals from one address within
            ${ctx.config.sso.audit.collapseWindow} are one row with a count. Also as JSON:
            <a href="/admin/audit.json">/admin/audit.json</a>.
          </p>
          ${table(['Time', 'Event', 'Outcome', 'Provider', 'E-mail', 'Address', 'Code', 'Reason', 'Details'], rows, 'Nothing yet.')}
          ${pager}`,
      );
    } catch (err) {
      next(err);
    }
  });

  router.get('/admin/audit.json', async (req, res, next) => {
    try {
      const raw = Number(queryParam(req, 'limit') ?? '200');
      const limit = Number.isInteger(raw) && raw >= 1 && raw <= 1000 ? raw : 200;
      const pageNo = pageNumber(queryParam(req, 'page'), limit);
      const { entries, more } = await ctx.audit.page(pageNo, limit);
      res.set('cache-control', 'no-store').json({
        entries,
        page: pageNo,
        next: more ? `/admin/audit.json?page=${pageNo + 1}&limit=${limit}` : null,
      });
    } catch (err) {
      next(err);
    }
  });
}

const AUDIT_PAGE_SIZE = 50;

/** `?page=` as a page number from 1, within the entries a page can reach. */
function pageNumber(value: string | undefined, pageSize: number): number {
  const n = Number(value ?? '1');
  const last = Math.max(1, Math.ceil(AUDIT_MAX_SCAN / pageSize));
  return Number.isInteger(n) && n >= 1 ? Math.min(n, last) : 1;
}

function auditDetails(e: AuditEntry): string {
  const repeated =
    e.event === 'sign_in_refused' && e.count !== undefined && e.count > 1
      ? `${e.count} times, the last at ${formatTime(e.lastAt)}`
      : '';
  const sessions =
    e.event === 'sessions_ended' && e.count !== undefined ? `${e.count} session(s)` : '';
  return [
    repeated,
    e.role ? `role ${e.role}` : '',
    e.actor ? `by ${e.actor}` : '',
    sessions,
    e.subject ? `subject ${e.subject}` : '',
  ]
    .filter(Boolean)
    .join(', ');
}
