import type { Notification } from '@plugboard/sdk';
import type { InstanceConfig, RouteConfig } from './config/schema';

export interface RouteTarget {
  route: RouteConfig;
  instance: InstanceConfig;
  /** `<route>/<instance name>`. */
  instanceId: string;
}

export function instanceIdOf(route: RouteConfig, instance: InstanceConfig): string {
  return `${route.name}/${instance.name ?? instance.plugin}`;
}

function matches(list: readonly string[], value: string | undefined): boolean {
  return list.length === 0 || (value !== undefined && list.includes(value));
}

/** Why a route does or does not take a notification; empty reason = match. */
export function explainRoute(route: RouteConfig, n: Notification): string | undefined {
  const m = route.match;
  if (!matches(m.projects, n.project?.slug)) {
    return `project ${n.project?.slug ?? '(none)'} not in [${m.projects.join(', ')}]`;
  }
  if (!matches(m.environments, n.environment)) {
    return `environment ${n.environment ?? '(none)'} not in [${m.environments.join(', ')}]`;
  }
  if (!matches(m.levels, n.level)) {
    return `level ${n.level ?? '(none)'} not in [${m.levels.join(', ')}]`;
  }
  if (
    m.resources.length > 0 &&
    !m.resources.includes(n.resource) &&
    !m.resources.includes(n.kind)
  ) {
    return `${n.kind} not in [${m.resources.join(', ')}]`;
  }
  return undefined;
}

/** Every plugin instance of every route that takes this notification. */
export function matchRoutes(routes: readonly RouteConfig[], n: Notification): RouteTarget[] {
  const out: RouteTarget[] = [];
  for (const route of routes) {
    if (explainRoute(route, n) !== undefined) continue;
    for (const instance of route.instances) {
      out.push({ route, instance, instanceId: instanceIdOf(route, instance) });
    }
  }
  return out;
}
