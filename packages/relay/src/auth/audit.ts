import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../store/types';

/**
 * Who signed in, who was refused and why, which identities were linked, who
 * signed out or had their sessions ended. Kept in the store (so every
 * replica writes to one log) for {@link AUDIT_RETENTION_DAYS} days. Entries
 * hold e-mails, provider ids, subjects, client addresses, codes and reasons,
 * never a token, a code, a cookie or a secret.
 *
 * Refusals repeat (a script replaying callbacks, a person reloading an error
 * page): identical ones within the collapse window are one entry whose
 * `count` and `lastAt` go up, so junk cannot push real refusals out of view.
 */

export const SSO_AUDIT_NAMESPACE = 'sso-audit';
/** Collapse window + refusal fingerprint → the key of the entry standing for them. */
export const SSO_AUDIT_GROUPS_NAMESPACE = 'sso-audit-groups';
export const AUDIT_RETENTION_DAYS = 90;
/** Pages reach this far back; older entries stay in the store until they expire. */
export const AUDIT_MAX_SCAN = 10_000;

export type AuditEvent =
  /** A session started. */
  | 'sign_in'
  /** A sign-in was refused (by the flow or by the relay's rules). */
  | 'sign_in_refused'
  /** First sign-in: a relay user was created. */
  | 'account_created'
  /** An identity of another provider (or subject) was linked to an existing user. */
  | 'identity_linked'
  | 'sign_out'
  /** An admin ended every session of a user. */
  | 'sessions_ended';

export interface AuditEntry {
  /** When it happened; for collapsed refusals, the first of them. */
  at: number;
  event: AuditEvent;
  outcome: 'success' | 'refused';
  /** Provider id from `sso.providers`. */
  provider?: string;
  email?: string;
  /** The identity's id at the provider. */
  subject?: string;
  role?: string;
  /** `PB_SSO_*` and its reason (`state_mismatch`, `email_unverified`, …) when refused. */
  code?: string;
  reason?: string;
  /** The client's address (as `trustProxy` lets the relay see it). */
  address?: string;
  /** The admin who acted, for `sessions_ended`. */
  actor?: string;
  /**
   * `sessions_ended`: how many sessions it ended. `sign_in_refused`: how many
   * identical refusals this entry stands for (the last at `lastAt`).
   */
  count?: number;
  lastAt?: number;
}

export interface AuditPage {
  entries: AuditEntry[];
  /** Whether an older page has entries. */
  more: boolean;
}

/** Larger than any ms timestamp: `MAX - at` sorts newest first. */
const MAX_TIME = 9_999_999_999_999;
const MAX_SEQ = 999_999_999;
/** Orders the entries one process writes within one millisecond. */
let sequence = 0;

const RETENTION_SECONDS = AUDIT_RETENTION_DAYS * 86_400;

export class AuditLog {
  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
    /** Identical refusals within one such window are one entry. Default one hour. */
    private readonly collapseWindowMs = 3_600_000,
  ) {}

  async record(entry: Omit<AuditEntry, 'at'>): Promise<AuditEntry> {
    if (entry.event === 'sign_in_refused') return this.recordRefusal(entry);
    const at = this.now();
    const full: AuditEntry = { at, ...entry };
    await this.store.kvSet(SSO_AUDIT_NAMESPACE, keyAt(at), full, RETENTION_SECONDS);
    return full;
  }

  /**
   * Counts the refusal in the store's atomic counter of its collapse window,
   * then updates the one entry of that window (made by whichever replica saw
   * the first). Concurrent refusals may each write a count a little behind
   * the counter; the next one puts it right.
   */
  private async recordRefusal(entry: Omit<AuditEntry, 'at'>): Promise<AuditEntry> {
    const now = this.now();
    const windowMs = this.collapseWindowMs;
    const seconds = Math.max(1, Math.ceil(windowMs / 1000));
    const fingerprint = createHash('sha256')
      .update(
        JSON.stringify([
          entry.event,
          entry.code,
          entry.reason,
          entry.provider,
          entry.email,
          entry.subject,
          entry.address,
        ]),
      )
      .digest('base64url')
      .slice(0, 22);
    const group = `${Math.floor(now / windowMs) * windowMs}:${fingerprint}`;
    const n = await this.store.rateHit(`_relay:sso-audit:${group}`, seconds);
    const stored = n === 1 ? undefined : await this.store.kvGet(SSO_AUDIT_GROUPS_NAMESPACE, group);
    const key = typeof stored === 'string' ? stored : await this.claimGroup(group, now, seconds);

    const full: AuditEntry = { at: now, ...entry, count: n, lastAt: now };
    let existing = n === 1 ? undefined : await this.store.kvGet(SSO_AUDIT_NAMESPACE, key);
    if (existing === undefined) {
      if (await this.store.kvSetIfAbsent(SSO_AUDIT_NAMESPACE, key, full, RETENTION_SECONDS)) {
        return full;
      }
      existing = await this.store.kvGet(SSO_AUDIT_NAMESPACE, key);
    }
    const before = (existing ?? {}) as Partial<AuditEntry>;
    const merged: AuditEntry = {
      ...full,
      at: typeof before.at === 'number' ? Math.min(before.at, now) : now,
      count: Math.max(typeof before.count === 'number' ? before.count : 0, n),
      lastAt: Math.max(typeof before.lastAt === 'number' ? before.lastAt : 0, now),
    };
    await this.store.kvSet(SSO_AUDIT_NAMESPACE, key, merged, RETENTION_SECONDS);
    return merged;
  }

  /** The key of the group's entry: a new one, or the one another request claimed first. */
  private async claimGroup(group: string, now: number, seconds: number): Promise<string> {
    const fresh = keyAt(now);
    if (await this.store.kvSetIfAbsent(SSO_AUDIT_GROUPS_NAMESPACE, group, fresh, seconds)) {
      return fresh;
    }
    const claimed = await this.store.kvGet(SSO_AUDIT_GROUPS_NAMESPACE, group);
    return typeof claimed === 'string' ? claimed : fresh;
  }

  /** The newest entries first. */
  async list(limit = 200): Promise<AuditEntry[]> {
    const rows = await this.store.kvList(SSO_AUDIT_NAMESPACE, { limit });
    return rows.map((r) => r.value as AuditEntry);
  }

  /**
   * Page `page` (from 1) of `pageSize` entries, newest first, within the
   * newest {@link AUDIT_MAX_SCAN} entries.
   */
  async page(page: number, pageSize: number): Promise<AuditPage> {
    const start = (page - 1) * pageSize;
    if (start >= AUDIT_MAX_SCAN) return { entries: [], more: false };
    const end = Math.min(start + pageSize, AUDIT_MAX_SCAN);
    // The store lists by key from the start: one more row says whether there is a next page.
    const rows = await this.store.kvList(SSO_AUDIT_NAMESPACE, { limit: end + 1 });
    return {
      entries: rows.slice(start, end).map((r) => r.value as AuditEntry),
      more: rows.length > end && end < AUDIT_MAX_SCAN,
    };
  }
}

/** Keys sort newest first, so a page of the log is one bounded range read. */
function keyAt(at: number): string {
  sequence = (sequence + 1) % MAX_SEQ;
  return (
    `${String(MAX_TIME - at).padStart(13, '0')}-${String(MAX_SEQ - sequence).padStart(9, '0')}-` +
    randomBytes(6).toString('hex')
  );
}
