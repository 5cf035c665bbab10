import type { RelayConfig, RouteConfig } from '../config/schema';
import { compileTimeIntervals, isMuted, type CompiledTimeInterval } from './time-intervals';

/**
 * Mute time intervals of routes: while one of a route's `muteTimeIntervals`
 * is active, its deliveries are not sent (PB_DELIVERY_MUTED).
 */

/** Whether a route is muted at `now`, and by what: a sentence, or undefined. */
export type MuteReason = (routeName: string, now: number) => string | undefined;

/** The name of the route's mute interval active at `nowMs`, if any. */
export function activeMuteInterval(
  route: Pick<RouteConfig, 'muteTimeIntervals'>,
  intervals: ReadonlyMap<string, CompiledTimeInterval>,
  nowMs: number,
): string | undefined {
  const own: CompiledTimeInterval[] = [];
  for (const name of route.muteTimeIntervals ?? []) {
    const interval = intervals.get(name);
    if (interval) own.push(interval);
  }
  return isMuted(own, nowMs);
}

/**
 * `muteReason(routeName, now)` for a configuration: the gate asks it before
 * each delivery, and a digest flusher can ask it before sending. Intervals
 * are compiled once here (they were validated at load).
 */
export function muteChecker(config: Pick<RelayConfig, 'routes' | 'timeIntervals'>): MuteReason {
  const intervals = compileTimeIntervals(config.timeIntervals ?? []);
  const routes = new Map(config.routes.map((r) => [r.name, r]));
  return (routeName, now) => {
    const route = routes.get(routeName);
    if (!route || (route.muteTimeIntervals ?? []).length === 0) return undefined;
    const name = activeMuteInterval(route, intervals, now);
    return name === undefined
      ? undefined
      : `route ${routeName} is muted by time interval "${name}" (muteTimeIntervals)`;
  };
}
