import { existsSync, readFileSync } from 'node:fs';
import {
  humanDuration,
  loadSample,
  parseLegacyWebhook,
  parseSentryWebhook,
  WebhookError,
  type Notification,
} from '@plugboard/sdk';
import type { RelayConfig, RouteConfig } from '../config/schema';
import { groupKey, groupTimers } from './grouping';
import { evaluateRoutes } from '../routing';
import { notificationLabelSet, withLabels } from './labels';
import { muteChecker } from './mute';
import { parseMatcher } from './matchers';
import type { SilenceView } from './silences';

/**
 * `plugboard routes test <payload.json>`: which routes a Sentry payload would
 * take and why, and whether a silence or mute interval would hold its
 * deliveries at a given time. Pure, apart from reading the file, so tests
 * call it in-process.
 */

export interface RoutesTestInput {
  /** What the file was called on the command line, for messages. */
  file: string;
  body: unknown;
  /** `--resource`; inferred from the body's shape when absent. */
  resource?: string;
  /** Where `resource` came from, for the report; default `--resource`. */
  resourceFrom?: string;
  config: Pick<RelayConfig, 'routes' | 'timeIntervals'>;
  /** The time to evaluate silences and mute intervals at. */
  now: number;
  /** Silences of the running relay; undefined: they could not be read (`silencesNote` says why). */
  silences?: readonly SilenceView[];
  silencesNote?: string;
}

export interface RoutesTestRoute {
  index: number;
  name: string;
  evaluated: boolean;
  matched: boolean;
  continue: boolean;
  /** Evaluation stops after this route. */
  stops: boolean;
  reason?: string;
  instances: string[];
  /** Grouped routes: the group the notification counts into, or why it is delivered on its own. */
  group?: string;
}

export interface RoutesTestDelivery {
  instanceId: string;
  route: string;
  /** What would hold it at `at`: silence or mute; null when it would be sent. */
  held: { code: string; message: string } | null;
}

export interface RoutesTestReport {
  file: string;
  resource: string;
  /** How the resource was chosen: `--resource`, or the key of the body that gave it away. */
  resourceFrom: string;
  kind: string;
  labels: Record<string, string>;
  /** Labels with several values (a metric alert's projects, several rules). */
  multiValued: Record<string, readonly string[]>;
  routes: RoutesTestRoute[];
  deliveries: RoutesTestDelivery[];
  at: string;
  silences: string;
  inhibition: string;
}

function invalid(message: string): never {
  throw new WebhookError('PB_PAYLOAD_INVALID', message);
}

/** Read and parse a JSON payload file; `PB_PAYLOAD_INVALID` when it cannot be. */
export function readPayloadFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    invalid(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    invalid(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

export interface Payload {
  /** What it was called on the command line. */
  name: string;
  body: unknown;
  /** The sample's Sentry-Hook-Resource; undefined for a file (inferred from its shape). */
  resource?: string;
}

/**
 * The one lookup of `send-test`, `render` and `routes test`: a sample kind
 * (`issue.created`, `legacy_webhook`, ...) or a webhook JSON file. A name
 * that is no sample and does not look like a path is answered with the list
 * of kinds (`PB_PAYLOAD_UNSUPPORTED`); a file with `readPayloadFile`'s errors.
 */
export function readPayload(name: string, options: { unique?: boolean } = {}): Payload {
  try {
    const sample = loadSample(name, options);
    return { name, body: sample.body, resource: sample.resource };
  } catch (err) {
    const looksLikeFile = /[\\/]|\.json$/i.test(name) || existsSync(name);
    if ((err as { code?: unknown }).code !== 'PB_PAYLOAD_UNSUPPORTED' || !looksLikeFile) {
      throw err;
    }
  }
  return { name, body: readPayloadFile(name) };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The Sentry-Hook-Resource a body was sent with, from its shape: what each
 * resource's `data` carries, or the legacy plugin's top-level fields.
 */
export function inferResource(body: unknown): { resource: string; from: string } | undefined {
  if (!isRecord(body)) return undefined;
  const data = body.data;
  if (!isRecord(data)) {
    return 'project_slug' in body || 'triggering_rules' in body || ('id' in body && 'event' in body)
      ? { resource: 'legacy_webhook', from: 'legacy plugin body (no data)' }
      : undefined;
  }
  if ('issue' in data) return { resource: 'issue', from: 'data.issue' };
  if ('event' in data) {
    return {
      resource: 'event_alert',
      from: 'triggered_rule' in data ? 'data.event and data.triggered_rule' : 'data.event',
    };
  }
  if ('error' in data) return { resource: 'error', from: 'data.error' };
  if ('metric_alert' in data) return { resource: 'metric_alert', from: 'data.metric_alert' };
  if ('comment_id' in data || 'comment' in data)
    return { resource: 'comment', from: 'data.comment' };
  if ('installation' in data) return { resource: 'installation', from: 'data.installation' };
  return undefined;
}

/** The notification a payload file makes, as the relay would build it. */
export function notificationFromPayload(
  file: string,
  body: unknown,
  resource?: string,
  resourceFrom = '--resource',
): { notification: Notification; resource: string; from: string } {
  const inferred = resource ? { resource, from: resourceFrom } : inferResource(body);
  if (!inferred) {
    invalid(
      `cannot tell which Sentry resource ${file} is (no data.issue, data.event, data.error, data.metric_alert, data.comment or data.installation, and not a legacy plugin body): give --resource`,
    );
  }
  const parsed =
    inferred.resource === 'legacy_webhook'
      ? parseLegacyWebhook(body)
      : parseSentryWebhook({ resource: inferred.resource, body });
  if (!parsed.ok) {
    throw new WebhookError(
      parsed.reason === 'unsupported_resource' ? 'PB_PAYLOAD_UNSUPPORTED' : 'PB_PAYLOAD_INVALID',
      `${file} is not a valid "${inferred.resource}" payload: ${parsed.detail}`,
    );
  }
  return { notification: parsed.notification, ...inferred };
}

/** Evaluate every route for a payload, and what would hold each delivery at `now`. */
export function routesTest(input: RoutesTestInput): RoutesTestReport {
  const {
    notification: n,
    resource,
    from,
  } = notificationFromPayload(input.file, input.body, input.resource, input.resourceFrom);
  const set = notificationLabelSet(n);
  const evaluations = evaluateRoutes(input.config.routes, set);
  const muteReason = muteChecker(input.config);
  const silences = (input.silences ?? [])
    .map((s) => ({
      view: s,
      startsAt: Date.parse(s.startsAt),
      endsAt: Date.parse(s.endsAt),
      matchers: s.matchers.map((m) => parseMatcher(m)),
    }))
    .filter((s) => s.startsAt <= input.now && input.now < s.endsAt);

  const deliveries: RoutesTestDelivery[] = [];
  for (const e of evaluations) {
    for (const t of e.targets) {
      const labels = withLabels(set, { route: e.route.name, instance: t.instanceId });
      const silence = silences.find((s) => s.matchers.every((m) => m.matches(labels)));
      const muted = muteReason(e.route.name, input.now);
      deliveries.push({
        instanceId: t.instanceId,
        route: e.route.name,
        held: silence
          ? {
              code: 'PB_DELIVERY_SILENCED',
              message: `silenced by ${silence.view.id} (${silence.view.comment}) until ${silence.view.endsAt}`,
            }
          : muted
            ? { code: 'PB_DELIVERY_MUTED', message: muted }
            : null,
      });
    }
  }

  return {
    file: input.file,
    resource,
    resourceFrom: from,
    kind: n.kind,
    labels: { ...set.labels },
    multiValued: { ...set.multi },
    routes: evaluations.map((e) => ({
      index: e.index,
      name: e.route.name,
      evaluated: e.evaluated,
      matched: e.matched,
      continue: e.route.continue === true,
      stops: e.stops,
      ...(e.reason !== undefined ? { reason: e.reason } : {}),
      instances: e.targets.map((t) => t.instanceId),
      ...(e.matched ? groupNote(e.route, set.labels) : {}),
    })),
    deliveries,
    at: new Date(input.now).toISOString(),
    silences:
      input.silences === undefined
        ? `not checked: ${input.silencesNote ?? 'the relay was not asked'}`
        : `${silences.length} active silence(s) checked`,
    inhibition:
      'not checked: it depends on the notifications the relay has received (see plugboard deliveries list --code PB_DELIVERY_INHIBITED)',
  };
}

function groupNote(
  route: RouteConfig,
  labels: Readonly<Record<string, string>>,
): { group?: string } {
  const timers = groupTimers(route);
  if (!timers) return {};
  const key = groupKey(timers.by, labels);
  if (key === undefined) {
    return { group: `none of [${timers.by.join(', ')}] is set: delivered on its own` };
  }
  const d = (ms: number): string => humanDuration(ms);
  return {
    group:
      `counted into group ${key}: first message after ${d(timers.waitMs)}, ` +
      `then at most one per ${d(timers.intervalMs)}` +
      (timers.repeatMs > 0 ? `, reminder after ${d(timers.repeatMs)} with nothing new` : ''),
  };
}

/** The report as the CLI prints it. */
export function formatRoutesReport(r: RoutesTestReport): string {
  const lines: string[] = [];
  lines.push(`${r.kind} from ${r.file} (resource ${r.resource}, from ${r.resourceFrom})`, '');
  lines.push('Labels (what matchers, silences and inhibition rules see):');
  const width = Math.max(...Object.keys(r.labels).map((k) => k.length));
  for (const [k, v] of Object.entries(r.labels)) {
    const several = r.multiValued[k];
    lines.push(
      `  ${k.padEnd(width)}  ${JSON.stringify(v)}` +
        (several ? `  (any of ${several.map((s) => JSON.stringify(s)).join(', ')})` : ''),
    );
  }
  lines.push('', 'Routes, in order:');
  if (r.routes.length === 0) lines.push('  (no routes are configured)');
  for (const route of r.routes) {
    const head = `  ${route.index + 1}. ${route.name}: `;
    if (!route.evaluated) lines.push(`${head}${route.reason ?? 'not evaluated'}`);
    else if (!route.matched) lines.push(`${head}no match: ${route.reason ?? ''}`);
    else {
      lines.push(
        `${head}MATCH → ${route.instances.join(', ')}; ` +
          (route.stops
            ? 'evaluation stops here (no continue: true)'
            : 'continue: true, evaluation goes on'),
      );
      if (route.group) lines.push(`     group: ${route.group}`);
    }
  }
  lines.push('', `Deliveries at ${r.at}:`);
  if (r.deliveries.length === 0) {
    lines.push('  none: the relay would record the webhook as ignored');
  }
  for (const d of r.deliveries) {
    lines.push(
      d.held
        ? `  ${d.instanceId}: held, ${d.held.code}: ${d.held.message}`
        : `  ${d.instanceId}: sent`,
    );
  }
  lines.push('', `Silences: ${r.silences}`, `Inhibition: ${r.inhibition}`);
  return lines.join('\n') + '\n';
}
