import type { Request, Response, Router } from 'express';
import { readUserSettings, USERS_NAMESPACE, type UserNotificationSettings } from '../api';
import type { PagesContext } from './context';
import { formField, navUser, queryParam, sessionOf } from './context';
import { html, layout, sendPage, table, type Html } from './html';

/**
 * "My notifications": the signed-in person's own IM on/off, globally and per
 * project. Written to the same per-user settings the JSON API edits and the
 * IM notifier reads through `ctx.users`, so a project switched off here is
 * skipped at the next delivery.
 */

// Same rule as the JSON API's project slugs.
const PROJECT_SLUG = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

type Choice = 'on' | 'off' | 'default';

function choiceOf(value: boolean | null | undefined): Choice {
  return value === true ? 'on' : value === false ? 'off' : 'default';
}

function select(name: string, current: Choice, defaultLabel: string, label: string): Html {
  const opt = (value: Choice, text: string): Html =>
    html`<option value="${value}" ${current === value ? html`selected` : ''}>${text}</option>`;
  return html`<select name="${name}" aria-label="${label}">
    ${opt('on', 'On')}${opt('off', 'Off')}${opt('default', defaultLabel)}
  </select>`;
}

/** Projects worth a row: every project a route names, and every one the person set. */
function projectsFor(ctx: PagesContext, settings: UserNotificationSettings): string[] {
  const set = new Set<string>();
  for (const route of ctx.config.routes) for (const p of route.match.projects) set.add(p);
  for (const p of Object.keys(settings.projects)) set.add(p);
  return [...set].sort();
}

function renderPage(
  ctx: PagesContext,
  res: Response,
  settings: UserNotificationSettings,
  notice?: Html,
  status = 200,
): void {
  const user = navUser(res)!;
  const globalOn = settings.global ?? true;
  const rows = projectsFor(ctx, settings).map((slug) => {
    const own = settings.projects[slug];
    const effective = own ?? globalOn;
    return html`<tr data-project="${slug}">
      <td><code>${slug}</code></td>
      <td>
        ${select(`project:${slug}`, choiceOf(own), `As for all projects (${globalOn ? 'on' : 'off'})`, `IM messages for ${slug}`)}
      </td>
      <td class="effective">${effective ? 'on' : 'off'}</td>
    </tr>`;
  });
  sendPage(
    res,
    status,
    layout({
      title: 'My notifications',
      user,
      current: '/me/notifications',
      body: html`${notice ?? ''}
        <p>
          Alerts are sent to you by IM (as
          <code>${user.email.slice(0, user.email.indexOf('@'))}</code>) for the projects you receive
          alerts for. Turn them off for every project, or for one project only; a project setting
          wins over the setting for all projects.
        </p>
        <form method="post" action="/me/notifications">
          <input type="hidden" name="_csrf" value="${user.csrf}" />
          <p>
            <label
              >IM messages for all projects:
              ${select('global', choiceOf(settings.global), 'Default (on)', 'IM messages for all projects')}</label
            >
          </p>
          ${table(['Project', 'IM messages', 'Now'], rows, 'No project yet: add one below.')}
          <p>
            <label
              >Add a project (its Sentry slug): <input name="addProject" maxlength="100"
            /></label>
            <select name="addProjectState" aria-label="IM messages for the added project">
              <option value="off">Off</option>
              <option value="on">On</option>
            </select>
          </p>
          <p><button type="submit">Save</button></p>
        </form>`,
    }),
  );
}

class FormProblem extends Error {}

/** The change a submitted form asks for; throws FormProblem naming the field. */
function parseForm(req: Request): {
  global: boolean | null;
  projects: Record<string, boolean | null>;
} {
  const toValue = (field: string, v: string | undefined): boolean | null | undefined => {
    if (v === undefined) return undefined;
    if (v === 'on') return true;
    if (v === 'off') return false;
    if (v === 'default') return null;
    throw new FormProblem(`${field}: choose On, Off or the default`);
  };
  const global = toValue('IM messages for all projects', formField(req, 'global'));
  const projects: Record<string, boolean | null> = {};
  for (const key of Object.keys((req.body ?? {}) as Record<string, unknown>)) {
    if (!key.startsWith('project:')) continue;
    const slug = key.slice('project:'.length);
    if (!PROJECT_SLUG.test(slug)) throw new FormProblem(`"${slug}" is not a project slug`);
    const v = toValue(`IM messages for ${slug}`, formField(req, key));
    if (v !== undefined) projects[slug] = v;
  }
  const added = (formField(req, 'addProject') ?? '').trim();
  if (added !== '') {
    if (!PROJECT_SLUG.test(added)) {
      throw new FormProblem(
        `"${added.slice(0, 100)}" is not a project slug (letters, digits, "-", "_", ".")`,
      );
    }
    const state = formField(req, 'addProjectState') ?? 'off';
    const v = toValue(`IM messages for ${added}`, state);
    projects[added] = v ?? false;
  }
  return { global: global ?? null, projects };
}

export function mountNotifications(router: Router, ctx: PagesContext): void {
  router.get('/me/notifications', async (_req, res, next) => {
    try {
      const email = sessionOf(res)!.email;
      const saved = queryParam(_req, 'saved') === '1';
      renderPage(
        ctx,
        res,
        await readUserSettings(ctx.store, email),
        saved ? html`<div class="notice" role="status" id="saved">Saved.</div>` : undefined,
      );
    } catch (err) {
      next(err);
    }
  });

  router.post('/me/notifications', async (req, res, next) => {
    try {
      const email = sessionOf(res)!.email;
      const current = await readUserSettings(ctx.store, email);
      let change: ReturnType<typeof parseForm>;
      try {
        change = parseForm(req);
      } catch (err) {
        if (!(err instanceof FormProblem)) throw err;
        renderPage(
          ctx,
          res,
          current,
          html`<div class="notice error" role="alert">Not saved: ${err.message}</div>`,
          400,
        );
        return;
      }
      // The whole form is the new state: what it shows is what is kept.
      const settings: UserNotificationSettings = { global: change.global, projects: {} };
      for (const [slug, on] of Object.entries({ ...current.projects, ...change.projects })) {
        if (on !== null) settings.projects[slug] = on;
      }
      await ctx.store.kvSet(USERS_NAMESPACE, email, settings);
      ctx.logger.info(
        { email, ...settings },
        'user notification settings changed (My notifications)',
      );
      res.redirect(303, '/me/notifications?saved=1');
    } catch (err) {
      next(err);
    }
  });
}
