import type { Notification } from '@plugboard/sdk';
import type { InstanceConfig, RouteConfig } from './config/schema';
import { labelValues, notificationLabelSet, TAG_PREFIX, type LabelSet } from './noise/labels';
import { describeMismatch, parseMatcher, type Matcher } from './noise/matchers';

/**
 * Routes are evaluated in order, as in Alertmanager: the first route whose
 * conditions all hold takes the notification and evaluation stops there,
 * unless that route says `continue: true`. Conditions are the `match` lists
 * (equality on one label each) and the `matchers` (Alertmanager syntax), read
 * against the notification's labels (src/noise/labels.ts).
 */

export interface RouteTarget {
  route: RouteConfig;
  instance: InstanceConfig;
  /** `<route>/<instance name>`. */
  instanceId: string;
}

export function instanceIdOf(route: RouteConfig, instance: InstanceConfig): string {
  return `${route.name}/${instance.name ?? instance.plugin}`;
}

/** One condition of a route, with the words used when it fails. */
interface Condition {
  test(set: LabelSet): boolean;
  explain(set: LabelSet): string;
}

function shown(values: readonly string[]): string {
  const present = values.filter((v) => v !== '');
  if (present.length === 0) return '(none)';
  return present.length === 1 ? present[0]! : present.join('|');
}

/** `match.<key>: [a, b]`: one of the label's values is in the list. */
function listCondition(label: string, what: string, list: readonly string[]): Condition {
  return {
    test: (set) => labelValues(set, label).some((v) => list.includes(v)),
    explain: (set) => `${what} ${shown(labelValues(set, label))} not in [${list.join(', ')}]`,
  };
}

function matcherCondition(m: Matcher): Condition {
  return { test: (set) => m.matches(set), explain: (set) => describeMismatch(m, set) };
}

// Compiled once per route object: the settings are validated at load (a bad
// matcher is a start-up error), so compiling here cannot fail for them.
const compiled = new WeakMap<RouteConfig, readonly Condition[]>();

function conditionsOf(route: RouteConfig): readonly Condition[] {
  let out = compiled.get(route);
  if (out) return out;
  const m = route.match;
  const list: Condition[] = [];
  if (m.projects.length > 0) list.push(listCondition('project', 'project', m.projects));
  if (m.environments.length > 0) {
    list.push(listCondition('environment', 'environment', m.environments));
  }
  if (m.levels.length > 0) list.push(listCondition('level', 'level', m.levels));
  if (m.resources.length > 0) {
    // A resource takes any of its actions; a kind one action.
    list.push({
      test: (set) =>
        m.resources.includes(set.labels.resource ?? '') ||
        m.resources.includes(set.labels.kind ?? ''),
      explain: (set) => `${set.labels.kind ?? ''} not in [${m.resources.join(', ')}]`,
    });
  }
  if ((m.releases ?? []).length > 0) list.push(listCondition('release', 'release', m.releases));
  if ((m.rules ?? []).length > 0) list.push(listCondition('rule', 'rule', m.rules));
  for (const [key, value] of Object.entries(m.tags ?? {})) {
    list.push(listCondition(`${TAG_PREFIX}${key}`, `tag ${key}`, [value]));
  }
  for (const text of route.matchers ?? []) list.push(matcherCondition(parseMatcher(text)));
  out = list;
  compiled.set(route, out);
  return out;
}

/** Why a route's own conditions do not take a label set; undefined: they do. */
export function explainRouteLabels(route: RouteConfig, set: LabelSet): string | undefined {
  for (const c of conditionsOf(route)) if (!c.test(set)) return c.explain(set);
  return undefined;
}

/** Why a route does not take this notification (its first failing condition); undefined: it does. */
export function explainRoute(route: RouteConfig, n: Notification): string | undefined {
  return explainRouteLabels(route, notificationLabelSet(n));
}

export interface RouteEvaluation {
  route: RouteConfig;
  /** Position in `routes`. */
  index: number;
  /** Not reached: an earlier matching route without `continue` stopped the evaluation. */
  evaluated: boolean;
  matched: boolean;
  /** Why it did not match (the first failing condition), or why it was not evaluated. */
  reason?: string;
  /** Evaluation stops after this route (it matched and has no `continue: true`). */
  stops: boolean;
  targets: RouteTarget[];
}

/** Every route in order: matched or not and why, and where evaluation stopped. */
export function evaluateRoutes(
  routes: readonly RouteConfig[],
  n: Notification | LabelSet,
): RouteEvaluation[] {
  const set = 'labels' in n && 'multi' in n ? n : notificationLabelSet(n);
  const out: RouteEvaluation[] = [];
  let stoppedBy: RouteConfig | undefined;
  for (const [index, route] of routes.entries()) {
    if (stoppedBy) {
      out.push({
        route,
        index,
        evaluated: false,
        matched: false,
        reason: `not evaluated: route ${stoppedBy.name} matched and has no continue: true`,
        stops: false,
        targets: [],
      });
      continue;
    }
    const reason = explainRouteLabels(route, set);
    if (reason !== undefined) {
      out.push({
        route,
        index,
        evaluated: true,
        matched: false,
        reason,
        stops: false,
        targets: [],
      });
      continue;
    }
    const stops = route.continue !== true;
    if (stops) stoppedBy = route;
    out.push({
      route,
      index,
      evaluated: true,
      matched: true,
      stops,
      targets: route.instances.map((instance) => ({
        route,
        instance,
        instanceId: instanceIdOf(route, instance),
      })),
    });
  }
  return out;
}

/** Every plugin instance of every route that takes this notification, in route order. */
export function matchRoutes(routes: readonly RouteConfig[], n: Notification): RouteTarget[] {
  const set = notificationLabelSet(n);
  const out: RouteTarget[] = [];
  for (const route of routes) {
    if (explainRouteLabels(route, set) !== undefined) continue;
    for (const instance of route.instances) {
      out.push({ route, instance, instanceId: instanceIdOf(route, instance) });
    }
    if (route.continue !== true) break;
  }
  return out;
}

export interface ShadowedRoute {
  route: RouteConfig;
  index: number;
  /** The earlier route, without `continue: true`, that takes everything this one would. */
  by: RouteConfig;
  byIndex: number;
}

/**
 * Routes that can never match: an earlier route without `continue: true`
 * takes every notification they would take. Sound, not complete: it says so
 * only when each condition of the earlier route is implied by one of the
 * later route (a route with no conditions shadows every later one).
 */
export function shadowedRoutes(routes: readonly RouteConfig[]): ShadowedRoute[] {
  const out: ShadowedRoute[] = [];
  for (const [index, route] of routes.entries()) {
    for (let byIndex = 0; byIndex < index; byIndex++) {
      const by = routes[byIndex]!;
      if (by.continue !== true && implies(route, by)) {
        out.push({ route, index, by, byIndex });
        break;
      }
    }
  }
  return out;
}

/** Whatever `later` takes, `earlier` takes too. */
function implies(later: RouteConfig, earlier: RouteConfig): boolean {
  const e = earlier.match;
  const l = later.match;
  const lists = ['projects', 'environments', 'levels', 'resources', 'releases', 'rules'] as const;
  for (const key of lists) {
    const wide = e[key] ?? [];
    const narrow = l[key] ?? [];
    if (wide.length > 0 && (narrow.length === 0 || !narrow.every((v) => wide.includes(v)))) {
      return false;
    }
  }
  for (const [key, value] of Object.entries(e.tags ?? {})) {
    if ((l.tags ?? {})[key] !== value) return false;
  }
  return (earlier.matchers ?? []).every((m) => (later.matchers ?? []).includes(m));
}
