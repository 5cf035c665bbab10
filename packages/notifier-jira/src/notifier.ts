import { NotificationPlugin, retryable, unrecoverable } from '@plugboard/sdk';
import type { ConfigField, Notification, NotifyContext } from '@plugboard/sdk';
import { JiraClient } from './client';
import { apiVersionOf, authOf, CONFIG_FIELDS, localProblems, normaliseBaseUrl } from './config';
import type { JiraConfig } from './config';
import type { ConvertOptions } from './convert';
import { buildComment, buildDescription, MAX_VALUE_CHARS } from './description';
import { cut, inert, oneLine, wikiText } from './markup';
import { resolveFields } from './fields';
import type { CreateMeta } from './meta';
import { render } from './template';
import { JIRA_NOTIFIER_VERSION } from './version';

/** Create-metadata changes when an admin edits a screen: re-read it this often. */
const META_TTL_MS = 10 * 60 * 1000;
/** The Sentry issue → JIRA issue mapping; long, so an old issue alerting again is a comment. */
const MAPPING_TTL_SECONDS = 400 * 24 * 60 * 60;
/** Guards concurrent creates for one Sentry issue; outlives a few relay retries. */
const LOCK_TTL_SECONDS = 10 * 60;
/** "A create was sent": the next try searches before creating again. */
const SENT_TTL_SECONDS = 7 * 24 * 60 * 60;
/** The start-up check waits at most this long for JIRA, whatever `timeoutMs` says. */
const VALIDATE_TIMEOUT_MS = 15_000;

/** Alerts that open a JIRA issue when none exists yet; others only comment on one. */
const OPENING_KINDS = new Set([
  'issue.created',
  'issue.unresolved',
  'event_alert.triggered',
  'error.created',
  'legacy_webhook.triggered',
  'metric_alert.critical',
  'metric_alert.warning',
]);

const metaCache = new Map<string, { at: number; meta: CreateMeta }>();

/** Forget cached create-metadata (tests; an operator who just changed a screen restarts). */
export function clearMetadataCache(): void {
  metaCache.clear();
}

/** What one JIRA issue stands for: a Sentry issue, or a metric alert's incident. */
export interface Subject {
  id: string;
  /** Put on the JIRA issue so a retry after an ambiguous failure can find it. */
  label: string;
}

export function subjectOf(n: Notification): Subject | undefined {
  if (n.group?.id) return { id: n.group.id, label: `sentry-${n.group.id}` };
  if (n.metricAlert?.id) {
    return { id: `incident-${n.metricAlert.id}`, label: `sentry-incident-${n.metricAlert.id}` };
  }
  return undefined;
}

interface Mapping {
  key: string;
  id?: string;
}

/**
 * Creates one JIRA issue per Sentry issue (or metric alert incident), with
 * extra fields shaped by JIRA's create-metadata; a repeated alert comments
 * on that issue or does nothing.
 */
export class JiraNotifier extends NotificationPlugin<JiraConfig> {
  readonly slug = 'jira';
  readonly title = 'JIRA';
  readonly version = JIRA_NOTIFIER_VERSION;
  override readonly description =
    'Create one JIRA issue per Sentry issue, with fields shaped by JIRA create-metadata.';
  override readonly author = 'Plugboard';

  /**
   * No per-project cap: there is at most one issue per Sentry issue, and
   * dropping the alert that would create it loses the ticket.
   */
  override rateLimit = null;

  override configFields(): ConfigField[] {
    return CONFIG_FIELDS.map((field) => ({ ...field }));
  }

  /**
   * The config against JIRA's real metadata: unknown fields, read-only
   * fields, values JIRA would refuse, required fields left empty. JIRA being
   * unreachable is a problem only with `strictCheck`: a relay that cannot
   * start while JIRA is down would lose the alerts it exists to keep.
   */
  override async validateConfig(config: JiraConfig): Promise<string[]> {
    const local = localProblems(config);
    if (local.length > 0) return local;
    const timeoutMs = Math.min(config.timeoutMs, VALIDATE_TIMEOUT_MS);
    const client = this.client(config, timeoutMs, AbortSignal.timeout(timeoutMs * 3));
    let meta: CreateMeta;
    try {
      meta = await this.metadata(client, config);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const message = err instanceof Error ? err.message : String(err);
      if (code === 'PB_DELIVERY_UNRECOVERABLE') return [message];
      if (config.strictCheck) return [`JIRA could not be reached to check the fields: ${message}`];
      process.emitWarning(
        `jira: ${client.baseUrl} could not be reached to check the fields; they are checked on the first delivery: ${message}`,
        { code: 'PLUGBOARD_JIRA_UNCHECKED' },
      );
      return [];
    }
    return resolveFields(meta, config.fields, this.convertOptions(config)).problems;
  }

  override async shouldNotify(
    notification: Notification,
    ctx: NotifyContext<JiraConfig>,
  ): Promise<boolean> {
    // Comments and installation events are not about an issue or incident.
    if (!subjectOf(notification)) {
      ctx.logger.debug({ kind: notification.kind }, 'jira.skipped_no_issue');
      return false;
    }
    return super.shouldNotify(notification, ctx);
  }

  override async notify(notification: Notification, ctx: NotifyContext<JiraConfig>): Promise<void> {
    const config = ctx.config;
    const problems = localProblems(config);
    if (problems.length > 0) {
      throw unrecoverable(`jira: invalid configuration: ${problems.join('; ')}`);
    }
    const subject = subjectOf(notification);
    if (!subject) return;
    const client = this.client(
      config,
      Math.max(1, Math.min(config.timeoutMs, ctx.timeoutMs)),
      ctx.signal,
    );
    const mapKey = `issue:${client.baseUrl}:${config.projectKey}:${subject.id}`;
    const log = { sentryIssue: subject.id, kind: notification.kind };

    const existing = await ctx.store.get<Mapping>(mapKey);
    if (existing?.key) {
      const handled = await this.repeat(existing.key, notification, client, ctx);
      if (handled) return;
      await ctx.store.delete(mapKey);
    }
    if (!OPENING_KINDS.has(notification.kind)) {
      ctx.logger.info(log, 'jira.skipped_no_jira_issue');
      return;
    }

    // One creator at a time per Sentry issue; a retry of the same delivery
    // owns the lock it took before.
    const lockKey = `creating:${mapKey}`;
    const sentKey = `sent:${mapKey}`;
    if (
      !(await ctx.store.setIfAbsent(lockKey, ctx.idempotencyKey, { ttlSeconds: LOCK_TTL_SECONDS }))
    ) {
      const holder = await ctx.store.get<string>(lockKey);
      if (holder !== ctx.idempotencyKey) {
        throw retryable(
          `jira: another delivery is creating the JIRA issue for Sentry issue ${subject.id}; retrying to use it`,
        );
      }
    }
    const release = async (): Promise<void> => {
      await ctx.store.delete(lockKey);
      await ctx.store.delete(sentKey);
    };

    // An earlier create may have reached JIRA without an answer (timeout,
    // 5xx, crash): look for it before creating a second one.
    if (ctx.attempt > 1 || (await ctx.store.get(sentKey)) !== undefined) {
      const found = await client.findByLabel(config.projectKey, subject.label);
      if (found) {
        await ctx.store.set(mapKey, { key: found } satisfies Mapping, {
          ttlSeconds: MAPPING_TTL_SECONDS,
        });
        await release();
        ctx.logger.info({ ...log, jiraIssue: found }, 'jira.found_after_ambiguous_create');
        return;
      }
    }

    let created: { id: string; key: string };
    let meta: CreateMeta;
    try {
      meta = await this.metadata(client, config);
      const fields = this.createFields(meta, notification, subject, ctx);
      await ctx.store.set(sentKey, ctx.idempotencyKey, { ttlSeconds: SENT_TTL_SECONDS });
      created = await client.createIssue(fields, new Map(meta.fields.map((f) => [f.id, f.name])));
    } catch (err) {
      // Only a create that may have reached JIRA keeps its marker: a refusal
      // (4xx) or a 429 created nothing.
      const e = err as { code?: unknown; status?: unknown };
      const ambiguous =
        e.code === 'PB_DELIVERY_TIMEOUT' ||
        (e.code === 'PB_DELIVERY_FAILED' && (e.status === undefined || Number(e.status) >= 500));
      if (!ambiguous) await release();
      throw err;
    }
    await ctx.store.set(mapKey, { key: created.key, id: created.id } satisfies Mapping, {
      ttlSeconds: MAPPING_TTL_SECONDS,
    });
    await release();
    ctx.logger.info({ ...log, jiraIssue: created.key }, 'jira.created');

    if (notification.url) {
      try {
        const title = Array.from(oneLine(inert(notification.title)))
          .slice(0, 255)
          .join('');
        await client.addRemoteLink(created.key, notification.url, title);
      } catch (err) {
        // The description already links to Sentry; the issue exists either way.
        ctx.logger.warn(
          {
            ...log,
            jiraIssue: created.key,
            code: (err as { code?: unknown }).code,
            status: (err as { status?: unknown }).status,
          },
          'jira.remote_link_failed',
        );
      }
    }
  }

  /** True when handled; false when the mapped issue is gone from JIRA. */
  private async repeat(
    key: string,
    notification: Notification,
    client: JiraClient,
    ctx: NotifyContext<JiraConfig>,
  ): Promise<boolean> {
    const log = { jiraIssue: key, kind: notification.kind };
    if (ctx.config.onRepeat === 'nothing') {
      ctx.logger.info(log, 'jira.repeat_ignored');
      return true;
    }
    try {
      await client.addComment(key, buildComment(notification, client.apiVersion));
    } catch (err) {
      if ((err as { status?: unknown }).status === 404) {
        ctx.logger.warn(log, 'jira.mapped_issue_gone');
        return false;
      }
      throw err;
    }
    ctx.logger.info(log, 'jira.commented');
    return true;
  }

  private createFields(
    meta: CreateMeta,
    n: Notification,
    subject: Subject,
    ctx: NotifyContext<JiraConfig>,
  ): Record<string, unknown> {
    const config = ctx.config;
    const options = this.convertOptions(config);
    const resolved = resolveFields(meta, config.fields, options, n);
    if (resolved.problems.length > 0) {
      throw unrecoverable(
        `jira: the configured fields do not fit ${meta.projectKey} / ${meta.issueType.name}: ${resolved.problems.join('; ')}`,
      );
    }
    const has = (id: string): boolean => meta.fields.some((f) => f.id === id);
    // Summaries are plain text; ADF text is plain too, wiki text (v2) is markup.
    const summary = Array.from(oneLine(render(config.summary, n, inert)) || oneLine(inert(n.title)))
      .slice(0, 255)
      .join('');
    const fields: Record<string, unknown> = {
      ...resolved.values,
      project: { key: meta.projectKey },
      issuetype: { id: meta.issueType.id },
      summary,
    };
    if (has('description')) {
      const markup = options.apiVersion === 2 ? wikiText : inert;
      const escape = (value: string): string => markup(cut(value, MAX_VALUE_CHARS));
      fields.description = buildDescription(
        n,
        render(config.description, n, escape),
        options.apiVersion,
      );
    }
    if (has('labels')) {
      const configured = Array.isArray(fields.labels) ? (fields.labels as string[]) : [];
      fields.labels = [...new Set([...configured, subject.label])];
    } else {
      // Without the label a retry after an ambiguous failure cannot find the
      // issue; the store still prevents duplicates in every other case.
      ctx.logger.warn(
        { project: meta.projectKey, issueType: meta.issueType.name },
        'jira.labels_not_on_screen',
      );
    }
    return fields;
  }

  private convertOptions(config: JiraConfig): ConvertOptions {
    return { deployment: config.deployment, apiVersion: apiVersionOf(config) };
  }

  private client(config: JiraConfig, timeoutMs: number, signal: AbortSignal): JiraClient {
    return new JiraClient({
      baseUrl: config.baseUrl,
      deployment: config.deployment,
      ...JiraClient.authOptions(authOf(config)),
      apiVersion: apiVersionOf(config),
      timeoutMs,
      signal,
    });
  }

  private async metadata(client: JiraClient, config: JiraConfig): Promise<CreateMeta> {
    // The account is part of the key: another account may see other fields.
    const key = [
      normaliseBaseUrl(config.baseUrl),
      client.apiVersion,
      config.deployment,
      config.email ?? '',
      config.username ?? '',
      config.projectKey,
      config.issueType,
    ].join('|');
    const cached = metaCache.get(key);
    if (cached && Date.now() - cached.at < META_TTL_MS) return cached.meta;
    const meta = await client.createMeta(config.projectKey, config.issueType);
    metaCache.set(key, { at: Date.now(), meta });
    return meta;
  }
}
