import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Request } from 'express';
import jwt from 'jsonwebtoken';
import { PluginRegistry } from '@plugboard/sdk';
import type { Identity } from '@plugboard/sso';
import { AuditLog } from '../src/auth/audit';
import { resolveSsoProviders } from '../src/auth/providers';
import { csrfMatches, SessionManager } from '../src/auth/sessions';
import { groupsOf, policyFrom, roleOf, UserDirectory } from '../src/auth/users';
import { loadConfig, type LoadedConfig } from '../src/config/load';
import { SSO_DEFAULTS, type SsoConfig } from '../src/config/sso-schema';
import { SqliteStore } from '../src/store/sqlite';
import { PostgresStore } from '../src/store/postgres';
import type { Store } from '../src/store/types';
import { clientAddress, limitKey, SignInRateLimit } from '../src/auth/rate-limit';
import { PG_URL, probePostgres, psql, uniqueName } from './helpers/faults-process';
import { builtinPlugins } from '../src/relay';

// Unit tier: sessions, CSRF tokens, roles, the sign-in rules, the audit log
// and the `sso` settings, on a real (temporary) SQLite store.

const SECRET = 'session-secret-0123456789abcdef-0123456789';

let dir: string;
let store: SqliteStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pb-auth-'));
  store = new SqliteStore({ dataDir: join(dir, 'data') });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function clock(start = Date.UTC(2030, 0, 1)): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('SessionManager', () => {
  const ann = { email: 'ann@example.com', role: 'member' as const, provider: 'company' };

  it('reads back a session it started, with a CSRF token of its own', async () => {
    const sessions = new SessionManager({ store, secret: SECRET, ttlMs: 3_600_000, secure: true });
    const { token, session } = await sessions.start(ann);
    const read = await sessions.read(token);
    expect(read.session).toMatchObject({
      email: 'ann@example.com',
      role: 'member',
      id: session.id,
    });
    expect(read.session?.csrf).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(sessions.cookieName).toBe('__Host-plugboard_session');
    expect(sessions.cookieOptions()).toMatchObject({
      httpOnly: true,
      sameSite: 'lax',
      secure: true,
      path: '/',
      maxAge: 3_600_000,
    });
  });

  it('expires a session after sessionTtl (injected clock)', async () => {
    const c = clock();
    const sessions = new SessionManager({
      store,
      secret: SECRET,
      ttlMs: 60_000,
      secure: false,
      now: c.now,
    });
    const { token } = await sessions.start(ann);
    c.advance(59_000);
    expect((await sessions.read(token)).session).toBeDefined();
    c.advance(2_000);
    expect(await sessions.read(token)).toEqual({ problem: 'expired' });
  });

  it('refuses a token once the session ended (signed out), though it has not expired', async () => {
    const sessions = new SessionManager({ store, secret: SECRET, ttlMs: 3_600_000, secure: false });
    const { token, session } = await sessions.start(ann);
    await sessions.end(session);
    expect(await sessions.read(token)).toEqual({ problem: 'ended' });
  });

  it('refuses tampered tokens, other secrets, other algorithms and garbage', async () => {
    const sessions = new SessionManager({ store, secret: SECRET, ttlMs: 3_600_000, secure: false });
    const { token, session } = await sessions.start(ann);
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forgedPayload = Buffer.from(
      JSON.stringify({ ...claims, sub: 'root@example.com' }),
    ).toString('base64url');
    expect(await sessions.read(`${h}.${forgedPayload}.${s}`)).toEqual({ problem: 'invalid' });
    const otherSecret = jwt.sign(
      { sub: ann.email, jti: session.id },
      'another-secret-0123456789abcdef-0123456789',
      { algorithm: 'HS256', issuer: 'plugboard-relay', audience: 'plugboard-pages', expiresIn: 60 },
    );
    expect(await sessions.read(otherSecret)).toEqual({ problem: 'invalid' });
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${p}.`;
    expect(await sessions.read(none)).toEqual({ problem: 'invalid' });
    expect(await sessions.read('not-a-jwt')).toEqual({ problem: 'invalid' });
    expect(await sessions.read(undefined)).toEqual({ problem: 'missing' });
  });

  it('ends every session of one user, and only theirs', async () => {
    const sessions = new SessionManager({ store, secret: SECRET, ttlMs: 3_600_000, secure: false });
    const a1 = await sessions.start(ann);
    const a2 = await sessions.start(ann);
    // A prefix of ann's address must not match: keys are "<email>:<id>".
    const other = await sessions.start({ ...ann, email: 'ann@example.com.au' });
    expect(await sessions.listFor('ann@example.com')).toHaveLength(2);
    expect(await sessions.endAll('ann@example.com')).toBe(2);
    expect((await sessions.read(a1.token)).problem).toBe('ended');
    expect((await sessions.read(a2.token)).problem).toBe('ended');
    expect((await sessions.read(other.token)).session).toBeDefined();
  });
});

describe('csrfMatches', () => {
  it('accepts the session token only', () => {
    const session = { csrf: 'abcdefghijklmnopqrstuvwxyz0123456789' };
    expect(csrfMatches(session, 'abcdefghijklmnopqrstuvwxyz0123456789')).toBe(true);
    expect(csrfMatches(session, 'abcdefghijklmnopqrstuvwxyz012345678')).toBe(false);
    expect(csrfMatches(session, '')).toBe(false);
    expect(csrfMatches(session, undefined)).toBe(false);
    expect(csrfMatches(session, ['abcdefghijklmnopqrstuvwxyz0123456789'])).toBe(false);
  });
});

function policy(sso: Partial<SsoConfig> = {}) {
  return policyFrom({ ...SSO_DEFAULTS, ...sso });
}

const identity = (over: Partial<Identity> = {}): Identity => ({
  id: 'sub-1',
  email: 'Ann@Example.com',
  emailVerified: true,
  name: 'Ann',
  data: { groups: ['ops'] },
  ...over,
});

describe('roles', () => {
  it('makes everyone a member unless an e-mail or a group names them admin', () => {
    const p = policy({ admins: { emails: ['Root@Example.com'], groups: ['plugboard-admins'] } });
    expect(roleOf('ann@example.com', identity(), p)).toBe('member');
    expect(roleOf('root@example.com', identity(), p)).toBe('admin');
    expect(
      roleOf('ann@example.com', identity({ data: { groups: ['ops', 'plugboard-admins'] } }), p),
    ).toBe('admin');
    // No admins configured: nobody is one, whatever the groups say.
    expect(roleOf('ann@example.com', identity({ data: { groups: ['admin'] } }), policy())).toBe(
      'member',
    );
  });

  it('reads the role claim as a string or a list, in data or data.claims', () => {
    expect(groupsOf(identity({ data: { roles: 'admin' } }), 'roles')).toEqual(['admin']);
    expect(groupsOf(identity({ data: { claims: { roles: ['a', 1, 'b'] } } }), 'roles')).toEqual([
      'a',
      'b',
    ]);
    expect(groupsOf(identity({ data: {} }), 'groups')).toEqual([]);
    const p = policy({ roleClaim: 'roles', admins: { emails: [], groups: ['admin'] } });
    expect(roleOf('ann@example.com', identity({ data: { roles: 'admin' } }), p)).toBe('admin');
  });
});

describe('UserDirectory.signIn', () => {
  it('creates a user keyed by the normalised e-mail at the first sign-in', async () => {
    const users = new UserDirectory(store, policy());
    const out = await users.signIn('company', identity());
    expect(out).toMatchObject({ created: true, linked: false });
    expect(out.user).toMatchObject({
      email: 'ann@example.com',
      role: 'member',
      identities: [{ provider: 'company', subject: 'sub-1' }],
    });
    const again = await users.signIn('company', identity());
    expect(again).toMatchObject({ created: false, linked: false });
    expect(again.user.identities).toHaveLength(1);
  });

  it('refuses addresses outside allowedDomains', async () => {
    const users = new UserDirectory(store, policy({ allowedDomains: ['example.org'] }));
    await expect(users.signIn('company', identity())).rejects.toMatchObject({
      code: 'PB_SSO_EMAIL_DOMAIN_NOT_ALLOWED',
      reason: 'email_domain_not_allowed',
      status: 403,
    });
    // Exact match: a subdomain is another domain.
    const sub = new UserDirectory(store, policy({ allowedDomains: ['example.com'] }));
    await expect(
      sub.signIn('company', identity({ email: 'ann@eu.example.com' })),
    ).rejects.toMatchObject({ code: 'PB_SSO_EMAIL_DOMAIN_NOT_ALLOWED' });
    await expect(sub.signIn('company', identity())).resolves.toMatchObject({ created: true });
  });

  it('refuses an unverified e-mail, at the first sign-in and for an existing user', async () => {
    const users = new UserDirectory(store, policy());
    await expect(users.signIn('company', identity({ emailVerified: false }))).rejects.toMatchObject(
      { code: 'PB_SSO_EMAIL_UNVERIFIED', reason: 'email_unverified' },
    );
    expect(await users.get('ann@example.com')).toBeUndefined();
    await users.signIn('company', identity());
    await expect(
      users.signIn('other', identity({ id: 'attacker', emailVerified: false })),
    ).rejects.toMatchObject({ code: 'PB_SSO_EMAIL_UNVERIFIED' });
    expect((await users.get('ann@example.com'))?.identities).toHaveLength(1);
  });

  it('links a new identity only when the provider verified the address', async () => {
    const users = new UserDirectory(store, policy());
    await users.signIn('company', identity());
    await expect(
      users.signIn('github', identity({ id: 'gh-7', emailVerified: undefined })),
    ).rejects.toMatchObject({ code: 'PB_SSO_ACCOUNT_LINK_REFUSED', check: 'email_not_verified' });
    const linked = await users.signIn('github', identity({ id: 'gh-7' }));
    expect(linked).toMatchObject({ created: false, linked: true });
    expect(linked.user.identities.map((i) => `${i.provider}:${i.subject}`)).toEqual([
      'company:sub-1',
      'github:gh-7',
    ]);
  });

  it('accepts a first sign-in from a provider that does not say whether it verified', async () => {
    const users = new UserDirectory(store, policy());
    await expect(
      users.signIn('oauth', identity({ emailVerified: undefined })),
    ).resolves.toMatchObject({ created: true });
  });

  it('refuses an identity without a usable e-mail', async () => {
    const users = new UserDirectory(store, policy());
    await expect(
      users.signIn('company', identity({ email: 'not an address' })),
    ).rejects.toMatchObject({ code: 'PB_SSO_IDENTITY_INVALID', check: 'email' });
  });

  it('sets the role at every sign-in', async () => {
    const users = new UserDirectory(store, policy({ admins: { emails: [], groups: ['boss'] } }));
    expect(
      (await users.signIn('company', identity({ data: { groups: ['boss'] } }))).user.role,
    ).toBe('admin');
    expect((await users.signIn('company', identity())).user.role).toBe('member');
  });
});

describe('AuditLog', () => {
  it('lists the newest entries first', async () => {
    const c = clock();
    const audit = new AuditLog(store, c.now);
    await audit.record({ event: 'sign_in', outcome: 'success', email: 'a@example.com' });
    c.advance(1000);
    await audit.record({
      event: 'sign_in_refused',
      outcome: 'refused',
      code: 'PB_SSO_STATE_MISMATCH',
      reason: 'state_mismatch',
    });
    c.advance(1000);
    await audit.record({ event: 'sign_out', outcome: 'success', email: 'a@example.com' });
    const entries = await audit.list();
    expect(entries.map((e) => e.event)).toEqual(['sign_out', 'sign_in_refused', 'sign_in']);
    expect(entries[1]).toEqual({
      at: c.now() - 1000,
      event: 'sign_in_refused',
      outcome: 'refused',
      code: 'PB_SSO_STATE_MISMATCH',
      reason: 'state_mismatch',
      count: 1,
      lastAt: c.now() - 1000,
    });
    expect(await audit.list(1)).toHaveLength(1);
  });
});

// The collapsing goes through the store's counter and conditional writes,
// which each backend implements: both run it.
const { skip: skipPg, unavailable: pgUnavailable } = probePostgres('AuditLog on PostgreSQL');

describe.each([
  [
    'SQLite',
    async (now: () => number) => {
      const s = new SqliteStore({ dataDir: join(dir, 'audit'), now });
      return { store: s as Store, cleanup: () => s.close() };
    },
  ],
  [
    'PostgreSQL',
    async (now: () => number) => {
      if (pgUnavailable) throw new Error(`PostgreSQL is not reachable: ${pgUnavailable}`);
      const schema = uniqueName('pb_audit');
      const pg = new PostgresStore({ connectionString: PG_URL, schema, maxConnections: 2, now });
      return {
        store: pg as Store,
        cleanup: async () => {
          await pg.close();
          psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        },
      };
    },
  ],
] as const)('AuditLog refusals on %s', (name, open) => {
  const run = name === 'PostgreSQL' && skipPg ? it.skip : it;
  const refused = (address: string, reason = 'state_mismatch') => ({
    event: 'sign_in_refused' as const,
    outcome: 'refused' as const,
    code: 'PB_SSO_STATE_MISMATCH',
    reason,
    address,
  });

  run(
    'collapses identical refusals into one entry with a count, per address and window',
    async () => {
      // The store shares the clock: its counters' windows are the log's.
      const c = clock(Date.UTC(2030, 0, 1, 10));
      const { store: s, cleanup } = await open(c.now);
      try {
        const audit = new AuditLog(s, c.now, 3_600_000);
        await audit.record({ event: 'sign_in', outcome: 'success', email: 'a@example.com' });
        c.advance(1000);
        for (let i = 0; i < 300; i++) {
          await audit.record(refused('203.0.113.9'));
          c.advance(10);
        }
        await audit.record(refused('198.51.100.7'));
        await audit.record(refused('203.0.113.9', 'state_expired'));
        const entries = await audit.list();
        expect(entries).toHaveLength(4);
        const flood = entries.find(
          (e) => e.address === '203.0.113.9' && e.reason === 'state_mismatch',
        );
        expect(flood).toMatchObject({
          count: 300,
          at: Date.UTC(2030, 0, 1, 10) + 1000,
          lastAt: Date.UTC(2030, 0, 1, 10) + 1000 + 299 * 10,
        });
        // Newest first by the first refusal: the later ones are above the flood.
        expect(entries.map((e) => [e.address, e.count])).toEqual([
          ['203.0.113.9', 1],
          ['198.51.100.7', 1],
          ['203.0.113.9', 300],
          [undefined, undefined],
        ]);
        // The next window starts a new entry; the old one keeps its count.
        c.advance(3_600_000);
        await audit.record(refused('203.0.113.9'));
        const after = await audit.list();
        expect(after).toHaveLength(5);
        expect(after[0]).toMatchObject({ address: '203.0.113.9', count: 1 });
        expect(after.find((e) => e.count === 300)).toBeDefined();
      } finally {
        await cleanup();
      }
    },
  );

  run('pages the log, newest first, saying whether an older page exists', async () => {
    const c = clock();
    const { store: s, cleanup } = await open(c.now);
    try {
      const audit = new AuditLog(s, c.now);
      for (let i = 0; i < 25; i++) {
        await audit.record({ event: 'sign_in', outcome: 'success', email: `u${i}@example.com` });
        c.advance(1000);
      }
      const one = await audit.page(1, 10);
      const three = await audit.page(3, 10);
      expect(one.entries.map((e) => e.email)).toEqual(
        Array.from({ length: 10 }, (_, i) => `u${24 - i}@example.com`),
      );
      expect(one.more).toBe(true);
      expect(three.entries.map((e) => e.email)).toEqual(
        Array.from({ length: 5 }, (_, i) => `u${4 - i}@example.com`),
      );
      expect(three.more).toBe(false);
      expect(await audit.page(4, 10)).toEqual({ entries: [], more: false });
    } finally {
      await cleanup();
    }
  });
});

describe('client addresses and the sign-in limit', () => {
  const req = (ip: string | undefined) =>
    ({ ip, socket: { remoteAddress: ip } }) as unknown as Request;

  it('reads IPv4, IPv4-mapped IPv6 and IPv6 addresses, and nothing else', () => {
    expect(clientAddress(req('203.0.113.9'))).toBe('203.0.113.9');
    expect(clientAddress(req('::ffff:203.0.113.9'))).toBe('203.0.113.9');
    expect(clientAddress(req('2001:DB8::1'))).toBe('2001:db8::1');
    expect(clientAddress(req('not an address'))).toBe('unknown');
    expect(clientAddress(req(undefined))).toBe('unknown');
  });

  it('counts IPv6 clients per network of sso.rateLimit.ipv6Prefix bits', () => {
    expect(limitKey('203.0.113.9', 56)).toBe('203.0.113.9');
    expect(limitKey('2001:db8:aa:bbcc::1', 56)).toBe('2001:db8:aa:bb00:0:0:0:0/56');
    expect(limitKey('2001:db8:aa:bbff:1:2:3:4', 56)).toBe(limitKey('2001:db8:aa:bb00::9', 56));
    expect(limitKey('2001:db8:aa:bc00::1', 56)).not.toBe(limitKey('2001:db8:aa:bb00::1', 56));
    expect(limitKey('2001:db8::1', 128)).toBe('2001:db8:0:0:0:0:0:1/128');
    expect(limitKey('::ffff:1.2.3.4', 128)).toBe('0:0:0:0:0:ffff:102:304/128');
  });

  it('lets perMinute requests through per address, then says how long to wait', async () => {
    const now = () => Date.UTC(2030, 0, 1, 10, 0, 15);
    const clocked = new SqliteStore({ dataDir: join(dir, 'limit'), now });
    const limit = new SignInRateLimit({ store: clocked, perMinute: 3, ipv6Prefix: 56, now });
    const a = [];
    for (let i = 0; i < 5; i++) a.push(await limit.hit('203.0.113.9'));
    expect(a.map((d) => d.limited)).toEqual([false, false, false, true, true]);
    expect(a[3]).toEqual({ limited: true, retryAfter: 45, first: true });
    expect(a[4]).toMatchObject({ first: false });
    expect(await limit.hit('198.51.100.7')).toEqual({ limited: false });
    await clocked.close();
  });
});

// ------------------------------------------------------------------ config

function configFrom(yaml: string, env: NodeJS.ProcessEnv = {}): LoadedConfig {
  const d = mkdtempSync(join(tmpdir(), 'pb-auth-cfg-'));
  const file = join(d, 'plugboard.yaml');
  writeFileSync(file, yaml);
  try {
    return loadConfig({ file, env, cwd: d });
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

function errorOf(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected an error');
}

const OIDC = `
  providers:
    - id: company
      type: oidc
      config:
        issuer: https://login.example.com
        clientId: relay
        clientSecret: oidc-client-secret-0123456789
`;

describe('sso settings', () => {
  it('defaults to no providers: pages off, nothing required', () => {
    const loaded = configFrom('log: { level: info }\n');
    expect(loaded.config.sso).toEqual({
      sessionTtl: '12h',
      flowTtl: '10m',
      allowDummy: false,
      allowedDomains: [],
      admins: { emails: [], groups: [] },
      roleClaim: 'groups',
      providers: [],
      rateLimit: { perMinute: 60, ipv6Prefix: 56 },
      audit: { collapseWindow: '1h' },
    });
    expect(loaded.config.trustProxy).toBe(false);
  });

  it('checks the sign-in limit, the audit window and trustProxy, naming the key', () => {
    const err = errorOf(() =>
      configFrom(`trustProxy: true
sso:
  rateLimit: { perMinute: 0, ipv6Prefix: 12 }
  audit: { collapseWindow: 2d }
`),
    );
    expect(err.code).toBe('PB_CONFIG_INVALID');
    expect(err.message).toMatch(/trustProxy from .*never true/);
    expect(err.message).toMatch(/sso\.rateLimit\.perMinute from .*at least 1/);
    expect(err.message).toMatch(/sso\.rateLimit\.ipv6Prefix from .*at least 32/);
    expect(err.message).toMatch(/sso\.audit\.collapseWindow from .*between 1s and 1d/);
    const bad = errorOf(() => configFrom('trustProxy: [10.0.0.0/8, 10.0.0.0/33, proxy]\n'));
    expect(bad.message).toMatch(/trustProxy\[1\] from .*CIDR/);
    expect(bad.message).toMatch(/trustProxy\[2\] from .*CIDR/);
    expect(configFrom('trustProxy: [loopback, 10.0.0.0/8, "::1"]\n').config.trustProxy).toEqual([
      'loopback',
      '10.0.0.0/8',
      '::1',
    ]);
    expect(configFrom('sso: { rateLimit: { perMinute: 5 } }\n').config.sso.rateLimit).toEqual({
      perMinute: 5,
      ipv6Prefix: 56,
    });
  });

  it('requires publicUrl and sessionSecret with providers, naming the keys', () => {
    const err = errorOf(() => configFrom(`sso:${OIDC}`));
    expect(err.code).toBe('PB_CONFIG_INVALID');
    expect(err.message).toMatch(/sso\.publicUrl from .*required with sso\.providers/);
    expect(err.message).toMatch(/sso\.sessionSecret from .*PLUGBOARD_SESSION_SECRET/);
  });

  it('names the key of every bad value, and masks the session secret', () => {
    const err = errorOf(() =>
      configFrom(`sso:
  publicUrl: http://relay.example.com/pages
  sessionSecret: too-short-secret
  sessionTtl: forever
  allowedDomains: ["not a domain"]
  unknownKey: 1
${OIDC}`),
    );
    expect(err.message).toContain('sso.publicUrl');
    expect(err.message).toMatch(/must be https/);
    expect(err.message).toMatch(/the origin only/);
    expect(err.message).toMatch(/sso\.sessionSecret from .*at least 32 characters/);
    expect(err.message).not.toContain('too-short-secret');
    expect(err.message).toContain('sso.sessionTtl');
    expect(err.message).toContain('sso.allowedDomains[0]');
    expect(err.message).toMatch(/unknownKey/);
  });

  it('refuses two providers with one id', () => {
    const err = errorOf(() =>
      configFrom(`sso:
  publicUrl: https://relay.example.com
  sessionSecret: ${SECRET}
  providers:
    - { id: a, type: oidc }
    - { id: a, type: oauth2 }
`),
    );
    expect(err.message).toMatch(/sso\.providers\[1\]\.id .*duplicate provider id "a"/);
  });

  it('takes the session secret from PLUGBOARD_SESSION_SECRET and treats it as a secret', () => {
    const loaded = configFrom(`sso:\n  publicUrl: https://relay.example.com\n${OIDC}`, {
      PLUGBOARD_SESSION_SECRET: SECRET,
    });
    expect(loaded.config.sso.sessionSecret).toBe(SECRET);
    expect(loaded.origins['sso.sessionSecret']).toBe('PLUGBOARD_SESSION_SECRET');
    expect(loaded.secrets.has(SECRET)).toBe(true);
  });

  it('allows http only on a loopback host', () => {
    const loaded = configFrom(
      `sso:\n  publicUrl: http://127.0.0.1:8080\n  sessionSecret: ${SECRET}\n${OIDC}`,
    );
    expect(loaded.config.sso.publicUrl).toBe('http://127.0.0.1:8080');
  });
});

describe('resolveSsoProviders', () => {
  // An app with no plugin packages: the builtin providers only.
  function registry(): PluginRegistry {
    writeFileSync(join(dir, 'package.json'), '{"name":"app","version":"1.0.0"}');
    return new PluginRegistry({ appRoot: dir, builtins: builtinPlugins() });
  }
  const base = `sso:\n  publicUrl: https://relay.example.com\n  sessionSecret: ${SECRET}\n`;

  it('refuses the dummy provider unless sso.allowDummy', async () => {
    const loaded = configFrom(`${base}  providers:\n    - { id: dev, type: dummy }\n`);
    const err = await resolveSsoProviders(loaded, registry()).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string; details?: { path?: string } },
    );
    expect(err?.code).toBe('PB_CONFIG_INVALID');
    expect(err?.message).toMatch(
      /sso\.providers\[0\] \(dev\): the dummy provider .* sso\.allowDummy/,
    );
    expect(err?.details?.path).toBe('sso.providers[0].type');
    expect((err?.cause as { code?: string } | undefined)?.code).toBe('PB_SSO_PROVIDER_NOT_ALLOWED');

    const allowed = configFrom(
      `${base}  allowDummy: true\n  providers:\n    - { id: dev, type: dummy, label: Developer }\n`,
    );
    const providers = await resolveSsoProviders(allowed, registry());
    expect(providers.map((p) => [p.id, p.label, p.provider.slug])).toEqual([
      ['dev', 'Developer', 'dummy'],
    ]);
  });

  it('names an unknown provider type and lists the known ones', async () => {
    const loaded = configFrom(`${base}  providers:\n    - { id: x, type: saml }\n`);
    await expect(resolveSsoProviders(loaded, registry())).rejects.toMatchObject({
      code: 'PB_CONFIG_PLUGIN_UNKNOWN',
      message: expect.stringMatching(
        /sso\.providers\[0\] \(x\): no SSO provider "saml"; known: .*oidc/,
      ),
    });
  });

  it('reports provider config problems by entry and field, and scrubs secret fields', async () => {
    const loaded = configFrom(`${base}  providers:
    - { id: company, type: oidc, config: { issuer: "http://login.example.com", clientId: relay, clientSecret: oidc-client-secret-0123456789 } }
    - { id: other, type: oidc, config: { clientId: relay } }
`);
    const err = await resolveSsoProviders(loaded, registry()).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err?.code).toBe('PB_CONFIG_FIELD_INVALID');
    expect(err?.message).toMatch(/sso\.providers\[0\] \(company\): .*issuer must be an https/);
    expect(err?.message).toMatch(/sso\.providers\[1\] \(other\): config\.issuer/);
    expect(err?.message).not.toContain('oidc-client-secret-0123456789');
    expect(loaded.secrets.has('oidc-client-secret-0123456789')).toBe(true);
  });
});
