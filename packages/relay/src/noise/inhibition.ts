import { createHash } from 'node:crypto';
import type { Notification } from '@plugboard/sdk';
import type { InhibitRuleConfig } from '../config/schema';
import { durationMs } from '../durations';
import type { Store } from '../store/types';
import { labelValue, labelValues, notificationLabelSet, type LabelSet } from './labels';
import { parseMatcher, type Matcher } from './matchers';

/**
 * Alertmanager-style inhibition. A notification matching a rule's
 * `sourceMatchers` opens a *source*: for the values it has of the rule's
 * `equal` labels, deliveries of notifications matching `targetMatchers` with
 * the same values are held back (PB_DELIVERY_INHIBITED).
 *
 * A source is identified by its `alert` label (a metric alert's incident),
 * else its `issue` label (a Sentry issue). It stays open until a later
 * notification with the same identity and action `resolved` arrives
 * (`metric_alert.resolved`, `issue.resolved`) or `duration` passes. A
 * notification never inhibits itself or another with its own identity.
 *
 * Sources live in the store (kv namespace `inhibitions`) so every replica
 * sees them; they are written when a webhook is accepted, and only for
 * sources and resolutions: other notifications cost one in-memory matcher
 * pass and no I/O.
 */

export const INHIBITIONS_NAMESPACE = 'inhibitions';

/** Combinations of several-valued `equal` labels recorded per source, at most. */
const MAX_COMBINATIONS = 32;

export interface InhibitionSource {
  /** Fingerprint of the rule, so an edited rule does not inherit old sources. */
  rule: string;
  identity: string;
  kind: string;
  title: string;
  /** The `equal` labels and the values this source holds back. */
  equal: Record<string, string>;
  openedAt: number;
  until: number;
}

interface CompiledRule {
  /** `inhibitRules[i]`, for messages. */
  where: string;
  fingerprint: string;
  source: readonly Matcher[];
  target: readonly Matcher[];
  equal: readonly string[];
  durationMs: number;
}

export interface Inhibition {
  source: InhibitionSource;
  /** `inhibitRules[0]`. */
  rule: string;
}

export interface InhibitionsOptions {
  store: Store;
  rules: readonly InhibitRuleConfig[];
  now?: () => number;
  /** How long the list of open sources read from the store is reused (default 1000 ms). */
  cacheMs?: number;
}

/** `alert:53`, `issue:1170820242`, or the webhook's content identity. */
export function sourceIdentity(set: LabelSet, n?: Notification): string {
  const alert = labelValue(set.labels, 'alert');
  if (alert) return `alert:${alert}`;
  const issue = labelValue(set.labels, 'issue');
  if (issue) return `issue:${issue}`;
  return `webhook:${n?.dedupKey ?? ''}`;
}

function combinations(set: LabelSet, names: readonly string[]): Array<Record<string, string>> {
  let out: Array<Record<string, string>> = [{}];
  for (const name of names) {
    const next: Array<Record<string, string>> = [];
    for (const partial of out) {
      for (const v of labelValues(set, name)) {
        if (next.length < MAX_COMBINATIONS) next.push({ ...partial, [name]: v });
      }
    }
    out = next;
  }
  return out;
}

export function describeSource(inh: Inhibition): string {
  const s = inh.source;
  const equal = Object.entries(s.equal)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ');
  return (
    `inhibited by ${s.kind} ${JSON.stringify(s.title)} (${s.identity.replace(':', ' ')}, ` +
    `since ${new Date(s.openedAt).toISOString()}) under ${inh.rule}` +
    (equal ? ` (equal: ${equal})` : '')
  );
}

/** The inhibition rules of one relay over one store. */
export class Inhibitions {
  private readonly store: Store;
  private readonly now: () => number;
  private readonly cacheMs: number;
  private readonly rules: readonly CompiledRule[];
  private cache: { at: number; sources: InhibitionSource[] } | undefined;
  private loading: Promise<InhibitionSource[]> | undefined;
  /** Bumped by every local write: a read that started before it is not cached. */
  private generation = 0;

  constructor(options: InhibitionsOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
    this.cacheMs = options.cacheMs ?? 1000;
    this.rules = options.rules.map((r, i) => {
      const source = r.sourceMatchers.map((m) => parseMatcher(m));
      const target = r.targetMatchers.map((m) => parseMatcher(m));
      const text = JSON.stringify([source.map((m) => m.text), target.map((m) => m.text), r.equal]);
      return {
        where: `inhibitRules[${i}]`,
        fingerprint: createHash('sha256').update(text).digest('hex').slice(0, 12),
        source,
        target,
        equal: r.equal,
        durationMs: durationMs(r.duration),
      };
    });
  }

  get enabled(): boolean {
    return this.rules.length > 0;
  }

  /**
   * Record what a newly accepted notification opens or closes. Returns
   * undefined (nothing to wait for) when it is neither a source nor a
   * resolution, which is the common case.
   */
  observe(n: Notification): Promise<void> | undefined {
    if (this.rules.length === 0) return undefined;
    const set = notificationLabelSet(n);
    const identity = sourceIdentity(set, n);
    if (n.action === 'resolved') {
      // Only identities that can be resolved: a webhook's content identity never is.
      return identity.startsWith('webhook:') ? undefined : this.close(identity);
    }
    const writes: Array<Promise<void>> = [];
    const now = this.now();
    for (const rule of this.rules) {
      if (!rule.source.every((m) => m.matches(set))) continue;
      for (const equal of combinations(set, rule.equal)) {
        const source: InhibitionSource = {
          rule: rule.fingerprint,
          identity,
          kind: n.kind,
          title: n.title,
          equal,
          openedAt: now,
          until: now + rule.durationMs,
        };
        const key = `${rule.fingerprint}|${identity}|${JSON.stringify(equal)}`;
        writes.push(
          this.store.kvSet(
            INHIBITIONS_NAMESPACE,
            key,
            source,
            Math.max(1, Math.ceil(rule.durationMs / 1000)),
          ),
        );
      }
    }
    if (writes.length === 0) return undefined;
    return Promise.all(writes).then(() => this.invalidate());
  }

  private async close(identity: string): Promise<void> {
    const entries = await this.store.kvList(INHIBITIONS_NAMESPACE);
    const mine = entries.filter(
      (e) => (e.value as Partial<InhibitionSource>)?.identity === identity,
    );
    for (const e of mine) await this.store.kvDelete(INHIBITIONS_NAMESPACE, e.key);
    if (mine.length > 0) this.invalidate();
  }

  private invalidate(): void {
    this.generation++;
    this.cache = undefined;
    this.loading = undefined;
  }

  /** Open sources, from a read at most `cacheMs` old. */
  async open(): Promise<readonly InhibitionSource[]> {
    const now = this.now();
    const c = this.cache;
    if (c && now >= c.at && now - c.at < this.cacheMs) return c.sources;
    const generation = this.generation;
    this.loading ??= this.store
      .kvList(INHIBITIONS_NAMESPACE)
      .then((entries) => {
        const sources = entries
          .map((e) => e.value as InhibitionSource)
          .filter((s) => s && typeof s.rule === 'string' && typeof s.until === 'number');
        if (generation === this.generation) this.cache = { at: now, sources };
        return sources;
      })
      .catch((err: unknown) => {
        if (c) return c.sources;
        throw err;
      })
      .finally(() => {
        if (generation === this.generation) this.loading = undefined;
      });
    return this.loading;
  }

  /** The open source that holds back a delivery of this label set, if any. */
  async find(set: LabelSet, identity: string): Promise<Inhibition | undefined> {
    const rules = this.rules.filter((r) => r.target.every((m) => m.matches(set)));
    if (rules.length === 0) return undefined;
    const now = this.now();
    const sources = await this.open();
    for (const rule of rules) {
      for (const s of sources) {
        if (s.rule !== rule.fingerprint || s.until <= now || s.identity === identity) continue;
        if (rule.equal.every((name) => labelValues(set, name).includes(s.equal[name] ?? ''))) {
          return { source: s, rule: rule.where };
        }
      }
    }
    return undefined;
  }
}
