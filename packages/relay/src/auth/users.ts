import type { Identity } from '@plugboard/sso';
import type { SsoConfig } from '../config/sso-schema';
import { normalizeEmail } from '../server/api';
import type { Store } from '../store/types';
import { refusal } from './errors';

/**
 * The relay's users: one record per (normalised) e-mail, created at the
 * first sign-in, with every identity (provider id + subject) that signed in
 * as it. The e-mail is the key because everything else in the relay knows
 * people by e-mail: the per-user notification settings, the IM recipients.
 */

export const SSO_USERS_NAMESPACE = 'sso-users';

export type Role = 'admin' | 'member';

export interface LinkedIdentity {
  provider: string;
  subject: string;
  linkedAt: number;
  lastSignInAt: number;
}

export interface RelayUser {
  email: string;
  name?: string;
  role: Role;
  identities: LinkedIdentity[];
  createdAt: number;
  lastSignInAt: number;
}

/** Who may sign in, and who is an admin. */
export interface AccessPolicy {
  /** Lower-cased; empty: any domain. */
  allowedDomains: readonly string[];
  /** Normalised e-mails. */
  adminEmails: readonly string[];
  adminGroups: readonly string[];
  roleClaim: string;
}

export function policyFrom(sso: SsoConfig): AccessPolicy {
  return {
    allowedDomains: sso.allowedDomains.map((d) => d.toLowerCase()),
    adminEmails: sso.admins.emails.map((e) => normalizeEmail(e) ?? e.trim().toLowerCase()),
    adminGroups: sso.admins.groups,
    roleClaim: sso.roleClaim,
  };
}

/**
 * The groups or roles an identity carries under `claim`: in its data, or
 * in the raw claims a provider keeps under `data.claims`. A string counts
 * as a list of one.
 */
export function groupsOf(identity: Identity, claim: string): string[] {
  const data = identity.data ?? {};
  const claims = data.claims;
  const raw =
    data[claim] ??
    (typeof claims === 'object' && claims !== null
      ? (claims as Record<string, unknown>)[claim]
      : undefined);
  if (typeof raw === 'string') return [raw];
  if (Array.isArray(raw)) return raw.filter((g): g is string => typeof g === 'string');
  return [];
}

/**
 * `admin` only when the policy names the person (e-mail) or one of their
 * groups; everyone else is a `member`, the least privileged role.
 */
export function roleOf(email: string, identity: Identity, policy: AccessPolicy): Role {
  if (policy.adminEmails.includes(email)) return 'admin';
  const groups = groupsOf(identity, policy.roleClaim);
  return groups.some((g) => policy.adminGroups.includes(g)) ? 'admin' : 'member';
}

export interface SignInOutcome {
  user: RelayUser;
  /** First sign-in of this e-mail. */
  created: boolean;
  /** This provider identity was linked to an existing user now. */
  linked: boolean;
}

function isUser(value: unknown): value is RelayUser {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RelayUser).email === 'string' &&
    Array.isArray((value as RelayUser).identities)
  );
}

export class UserDirectory {
  constructor(
    private readonly store: Store,
    private readonly policy: AccessPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  async get(email: string): Promise<RelayUser | undefined> {
    const v = await this.store.kvGet(SSO_USERS_NAMESPACE, email);
    return isUser(v) ? v : undefined;
  }

  async list(limit = 1000): Promise<RelayUser[]> {
    const rows = await this.store.kvList(SSO_USERS_NAMESPACE, { limit });
    return rows.map((r) => r.value).filter(isUser);
  }

  /**
   * The relay user an identity signs in as, created or linked as needed.
   * Throws an SsoError (the refusal) when the rules say no:
   * - no usable e-mail → PB_SSO_IDENTITY_INVALID (check `email`);
   * - a domain outside `allowedDomains` → PB_SSO_EMAIL_DOMAIN_NOT_ALLOWED;
   * - `emailVerified === false` → PB_SSO_EMAIL_UNVERIFIED, first sign-in
   *   included: an unverified address may be anyone's;
   * - a new identity for an existing user whose e-mail the provider did not
   *   positively verify → PB_SSO_ACCOUNT_LINK_REFUSED (check `email_not_verified`):
   *   linking on a mere claim would hand the account to whoever typed it.
   */
  async signIn(providerId: string, identity: Identity): Promise<SignInOutcome> {
    const email = normalizeEmail(String(identity.email ?? ''));
    if (!email) {
      throw refusal('PB_SSO_IDENTITY_INVALID', {
        message: `provider ${providerId} gave no usable e-mail address for subject ${String(identity.id)}`,
        check: 'email',
      });
    }
    const domain = email.slice(email.lastIndexOf('@') + 1);
    if (this.policy.allowedDomains.length > 0 && !this.policy.allowedDomains.includes(domain)) {
      throw refusal('PB_SSO_EMAIL_DOMAIN_NOT_ALLOWED', {
        message: `${email}: the domain ${domain} is not in sso.allowedDomains`,
      });
    }
    if (identity.emailVerified === false) {
      throw refusal('PB_SSO_EMAIL_UNVERIFIED', {
        message: `${email}: provider ${providerId} says the address is not verified`,
      });
    }
    const subject = String(identity.id);
    const now = this.now();
    const role = roleOf(email, identity, this.policy);
    const identityRecord: LinkedIdentity = {
      provider: providerId,
      subject,
      linkedAt: now,
      lastSignInAt: now,
    };
    const fresh: RelayUser = {
      email,
      ...(identity.name ? { name: identity.name } : {}),
      role,
      identities: [identityRecord],
      createdAt: now,
      lastSignInAt: now,
    };
    // Created only if absent: of two first sign-ins at once, one creates and
    // the other goes through the linking rules below.
    if (await this.store.kvSetIfAbsent(SSO_USERS_NAMESPACE, email, fresh)) {
      return { user: fresh, created: true, linked: false };
    }
    const user = await this.get(email);
    if (!user) {
      // Unreadable record: start it over rather than lock the person out.
      await this.store.kvSet(SSO_USERS_NAMESPACE, email, fresh);
      return { user: fresh, created: true, linked: false };
    }
    const known = user.identities.find((i) => i.provider === providerId && i.subject === subject);
    let linked = false;
    if (known) {
      known.lastSignInAt = now;
    } else {
      if (identity.emailVerified !== true) {
        throw refusal('PB_SSO_ACCOUNT_LINK_REFUSED', {
          message: `${email}: not linking a new identity of provider ${providerId}: the provider does not say the address is verified`,
          check: 'email_not_verified',
        });
      }
      user.identities.push(identityRecord);
      linked = true;
    }
    user.role = role;
    user.lastSignInAt = now;
    if (identity.name) user.name = identity.name;
    await this.store.kvSet(SSO_USERS_NAMESPACE, email, user);
    return { user, created: false, linked };
  }
}
