import { randomBytes } from 'node:crypto';
import type { Store } from '../store/types';

/**
 * Who signed in, who was refused and why, which identities were linked, who
 * signed out or had their sessions ended. Kept in the store (so every
 * replica writes to one log) for {@link AUDIT_RETENTION_DAYS} days. Entries
 * hold e-mails, provider ids, subjects, codes and reasons, never a token, a
 * code, a cookie or a secret.
 */

export const SSO_AUDIT_NAMESPACE = 'sso-audit';
export const AUDIT_RETENTION_DAYS = 90;

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
  /** The admin who acted, for `sessions_ended`. */
  actor?: string;
  /** How many sessions an action ended. */
  count?: number;
}

/** Larger than any ms timestamp: `MAX - at` sorts newest first. */
const MAX_TIME = 9_999_999_999_999;
const MAX_SEQ = 999_999_999;
/** Orders the entries one process writes within one millisecond. */
let sequence = 0;

export class AuditLog {
  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  async record(entry: Omit<AuditEntry, 'at'>): Promise<AuditEntry> {
    const at = this.now();
    const full: AuditEntry = { at, ...entry };
    // Keys sort newest first, so a page of the log is one bounded range read.
    sequence = (sequence + 1) % MAX_SEQ;
    const key =
      `${String(MAX_TIME - at).padStart(13, '0')}-${String(MAX_SEQ - sequence).padStart(9, '0')}-` +
      randomBytes(6).toString('hex');
    await this.store.kvSet(SSO_AUDIT_NAMESPACE, key, full, AUDIT_RETENTION_DAYS * 86_400);
    return full;
  }

  /** The newest entries first. */
  async list(limit = 200): Promise<AuditEntry[]> {
    const rows = await this.store.kvList(SSO_AUDIT_NAMESPACE, { limit });
    return rows.map((r) => r.value as AuditEntry);
  }
}
