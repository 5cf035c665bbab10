import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSample, SAMPLE_KINDS } from '@plugboard/sdk';
import {
  brokenPluginApp,
  CLIENT_SECRET,
  cleanup,
  groupIdOf,
  issueCreated,
  LEGACY_TOKEN,
  metricValue,
  postLegacy,
  postSentry,
  relayConfig,
  requireBuiltRelay,
  runCli,
  startRelay,
  startFakeSentry,
  startSink,
  tempDir,
  waitFor,
  WEBHOOK_SECRET,
  writeConfig,
  type RelayProcess,
  type Sink,
  type SinkRequest,
} from './helpers';

// The BUILT relay (`node packages/relay/bin/plugboard.js serve`) as a real
// child process, talking HTTP on 127.0.0.1 to a real sink. Nothing is mocked:
// what is asserted is what an operator and a receiver would see.

beforeAll(requireBuiltRelay);
afterAll(() => cleanup({ removeTemp: true }));

async function metrics(relay: RelayProcess): Promise<string> {
  const res = await fetch(`${relay.url}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

const received = (text: string, resource: string, outcome: string): number =>
  metricValue(text, 'plugboard_webhooks_received_total', { resource, outcome });

const jobs = (text: string, state: string): number =>
  metricValue(text, 'plugboard_jobs', { state });

/** The kinds Sentry posts to /hooks/sentry (the legacy body has its own endpoint). */
const SENTRY_KINDS = SAMPLE_KINDS.filter((k) => !k.startsWith('legacy_webhook'));

describe('a running relay', () => {
  let sink: Sink;
  let relay: RelayProcess;

  beforeAll(async () => {
    sink = await startSink({ kind: 'ok' });
    const dir = tempDir();
    const config = writeConfig(dir, relayConfig({ dataDir: join(dir, 'data'), sinkUrl: sink.url }));
    relay = await startRelay({ config, cwd: dir });
  });
  afterAll(() => cleanup());

  /** Wait until every job the relay holds is finished, then the sink has all it will get. */
  async function settled(expectedJobs: number): Promise<string> {
    return waitFor(async () => {
      const text = await metrics(relay);
      return jobs(text, 'succeeded') + jobs(text, 'dead') >= expectedJobs &&
        jobs(text, 'pending') + jobs(text, 'running') === 0
        ? text
        : undefined;
    }, `${expectedJobs} finished jobs`);
  }

  it('acknowledges every signed sample with 202 and delivers each once, signed', async () => {
    const before = await metrics(relay);
    const firstRequest = sink.requests.length;
    const accepted = new Map<string, string>(); // webhook id → kind
    for (const kind of SENTRY_KINDS) {
      const sample = loadSample(kind);
      const res = await postSentry(relay.url, sample.resource, sample.body);
      expect({ kind, status: res.status, json: res.json }).toEqual({
        kind,
        status: 202,
        json: { id: expect.any(String), status: 'accepted', deliveries: 1 },
      });
      accepted.set(String(res.json.id), kind);
    }

    const after = await settled(jobs(before, 'succeeded') + accepted.size);
    expect(jobs(after, 'dead')).toBe(0);
    const got = sink.requests.slice(firstRequest);
    expect(got).toHaveLength(accepted.size);
    for (const r of got) {
      expect({ path: r.path, method: r.method, verified: r.verified }).toEqual({
        path: '/hook',
        method: 'POST',
        verified: true,
      });
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.webhookId).toMatch(/\S/);
      // The body names the delivery by the same id the header carries.
      expect(r.body).toMatchObject({ id: r.webhookId });
    }
    expect(new Set(got.map((r) => r.webhookId)).size).toBe(accepted.size);
    expect(got.map((r) => (r.body as { type: string }).type).sort()).toEqual(
      [...SENTRY_KINDS].sort(),
    );
    // The installation's one-time OAuth grant code is not passed on.
    const grant = (
      loadSample('installation.created').body as { data: { installation: { code: string } } }
    ).data.installation.code;
    expect(got.some((r) => r.raw.includes(grant))).toBe(false);

    // Counted by resource: 4 issue kinds, 3 metric alert kinds, one of each other.
    const delta = (resource: string, outcome: string): number =>
      received(after, resource, outcome) - received(before, resource, outcome);
    for (const [resource, n] of Object.entries({
      issue: 4,
      event_alert: 1,
      error: 1,
      metric_alert: 3,
      comment: 1,
      installation: 1,
    })) {
      expect({ resource, accepted: delta(resource, 'accepted') }).toEqual({
        resource,
        accepted: n,
      });
    }
  });

  it('acknowledges a redelivery (new Request-ID, same body) as a duplicate and does not deliver it again', async () => {
    const { resource, body } = issueCreated('990001');
    const first = await postSentry(relay.url, resource, body, { requestId: 'req-original' });
    expect(first).toMatchObject({ status: 202, json: { status: 'accepted', deliveries: 1 } });
    await waitFor(() => sink.requests.some((r) => groupIdOf(r) === '990001'), 'the first delivery');

    const before = await metrics(relay);
    const again = await postSentry(relay.url, resource, body, { requestId: 'req-redelivery' });
    expect(again.status).toBe(202);
    expect(again.json).toMatchObject({ status: 'duplicate', duplicateOf: first.json.id });
    expect(again.json).not.toHaveProperty('deliveries');

    // A duplicate creates no job, so there is nothing to wait for: the job
    // counts are unchanged and nothing more reaches the sink.
    const after = await settled(jobs(before, 'succeeded'));
    const total = (t: string): number =>
      ['pending', 'running', 'succeeded', 'dead', 'skipped'].reduce((n, s) => n + jobs(t, s), 0);
    expect(total(after)).toBe(total(before));
    expect(received(after, 'issue', 'duplicate') - received(before, 'issue', 'duplicate')).toBe(1);
    expect(sink.requests.filter((r) => groupIdOf(r) === '990001')).toHaveLength(1);
  });

  it('refuses a bad signature with 401 and a reason, and stores nothing', async () => {
    const before = await metrics(relay);
    const { resource, body } = issueCreated('990002');

    const wrongKey = await postSentry(relay.url, resource, body, { secret: 'not-the-secret' });
    expect(wrongKey.status).toBe(401);
    expect(wrongKey.json).toEqual({
      error: { code: 'PB_SIGNATURE_INVALID', message: expect.stringMatching(/does not match/) },
    });

    const garbage = await postSentry(relay.url, resource, body, { signature: 'zz'.repeat(32) });
    expect(garbage.status).toBe(401);
    expect(garbage.json).toEqual({
      error: { code: 'PB_SIGNATURE_INVALID', message: expect.stringMatching(/hexadecimal/) },
    });

    const missing = await postSentry(relay.url, resource, body, { signature: '' });
    expect(missing.status).toBe(401);
    expect(missing.json).toEqual({
      error: { code: 'PB_SIGNATURE_MISSING', message: expect.stringMatching(/missing/) },
    });
    // The reason never echoes the secret or the expected signature.
    expect(JSON.stringify([wrongKey, garbage, missing])).not.toContain(CLIENT_SECRET);

    const after = await metrics(relay);
    expect(
      received(after, 'issue', 'unauthorized') - received(before, 'issue', 'unauthorized'),
    ).toBe(3);
    expect(received(after, 'issue', 'accepted')).toBe(received(before, 'issue', 'accepted'));

    // Refused, so not taken for a redelivery once it arrives correctly signed.
    const good = await postSentry(relay.url, resource, body);
    expect(good).toMatchObject({ status: 202, json: { status: 'accepted' } });
  });

  it('answers /healthz, /readyz and /metrics', async () => {
    const health = await fetch(`${relay.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    const ready = await fetch(`${relay.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      ready: true,
      checks: { store: { ok: true }, plugins: { ok: true }, shutdown: { ok: true } },
    });

    const res = await fetch(`${relay.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain('# TYPE plugboard_webhooks_received_total counter');
    expect(text).toContain('plugboard_delivery_attempts_total');
    expect(text).toContain('plugboard_jobs');

    const missing = await fetch(`${relay.url}/nope`);
    expect(missing.status).toBe(404);
  });

  it('takes legacy webhooks with the token in a header or ?token=, and refuses a wrong token', async () => {
    const before = await metrics(relay);
    const legacyBody = (eventId: string): unknown => {
      const body = loadSample('legacy_webhook').body as { event: { event_id: string } };
      body.event.event_id = eventId;
      return body;
    };
    const url = `${relay.url}/hooks/sentry/legacy`;
    const ids = ['a'.repeat(32), 'b'.repeat(32), 'c'.repeat(32)];

    const bearer = await postLegacy(url, legacyBody(ids[0]!), {
      authorization: `Bearer ${LEGACY_TOKEN}`,
    });
    const custom = await postLegacy(url, legacyBody(ids[1]!), {
      'x-plugboard-token': LEGACY_TOKEN,
    });
    const query = await postLegacy(
      `${url}?token=${encodeURIComponent(LEGACY_TOKEN)}`,
      legacyBody(ids[2]!),
    );
    for (const res of [bearer, custom, query]) {
      expect(res).toMatchObject({ status: 202, json: { status: 'accepted', deliveries: 1 } });
    }

    const wrongHeader = await postLegacy(url, legacyBody('d'.repeat(32)), {
      authorization: 'Bearer wrong-token-wrong-token',
    });
    const wrongQuery = await postLegacy(
      `${url}?token=wrong-token-wrong-token`,
      legacyBody('e'.repeat(32)),
    );
    const none = await postLegacy(url, legacyBody('f'.repeat(32)));
    expect(wrongHeader).toEqual({
      status: 401,
      json: { error: { code: 'PB_SIGNATURE_INVALID', message: expect.any(String) } },
    });
    expect(wrongQuery.status).toBe(401);
    expect(wrongQuery.json).toMatchObject({ error: { code: 'PB_SIGNATURE_INVALID' } });
    expect(none.status).toBe(401);
    expect(none.json).toMatchObject({ error: { code: 'PB_SIGNATURE_MISSING' } });
    expect(JSON.stringify([wrongHeader, wrongQuery, none])).not.toContain(LEGACY_TOKEN);

    const eventIdOf = (r: SinkRequest): string | undefined =>
      (r.body as { type?: string; data?: { event?: { eventId?: string } } }).type ===
      'legacy_webhook.triggered'
        ? (r.body as { data: { event: { eventId: string } } }).data.event.eventId
        : undefined;
    const legacy = await waitFor(() => {
      const got = sink.requests.filter((r) => ids.includes(eventIdOf(r) ?? ''));
      return got.length >= ids.length ? got : undefined;
    }, 'three legacy deliveries');
    expect(legacy.map(eventIdOf).sort()).toEqual(ids);
    expect(legacy.every((r) => r.verified)).toBe(true);
    // Refused ones never arrive.
    expect(sink.requests.some((r) => ['d', 'e', 'f'].includes(eventIdOf(r)?.[0] ?? ''))).toBe(
      false,
    );

    const after = await metrics(relay);
    const delta = (outcome: string): number =>
      received(after, 'legacy_webhook', outcome) - received(before, 'legacy_webhook', outcome);
    expect(delta('accepted')).toBe(3);
    expect(delta('unauthorized')).toBe(3);
  });

  it('never writes a secret to its output', () => {
    const output = relay.stdout() + relay.stderr();
    expect(output).toContain('plugboard relay started');
    for (const secret of [CLIENT_SECRET, LEGACY_TOKEN, WEBHOOK_SECRET]) {
      expect(output).not.toContain(secret);
    }
  });
});

describe('start-up errors', () => {
  afterEach(() => cleanup());

  it('names PLUGBOARD_LISTEN and the Kubernetes cause for a service-link value, and prints no secret', async () => {
    const dir = tempDir();
    const config = writeConfig(
      dir,
      relayConfig({ dataDir: join(dir, 'data'), sinkUrl: 'http://127.0.0.1:9' }),
    );
    const envSecret = 'env-client-secret-should-stay-hidden';
    const res = await runCli(['serve', '--config', config], {
      cwd: dir,
      env: {
        PLUGBOARD_LISTEN: 'tcp://10.0.0.12:8080',
        PLUGBOARD_SENTRY_CLIENT_SECRET: envSecret,
      },
    });
    expect(res.code).toBe(78);
    expect(res.stderr).toContain('PLUGBOARD_LISTEN');
    expect(res.stderr).toContain('tcp://10.0.0.12:8080');
    expect(res.stderr).toMatch(/Kubernetes/);
    for (const secret of [envSecret, CLIENT_SECRET, LEGACY_TOKEN, WEBHOOK_SECRET]) {
      expect(res.stderr).not.toContain(secret);
      expect(res.stdout).not.toContain(secret);
    }
  });
});

describe('a routed plugin that fails to load', () => {
  afterEach(() => cleanup());

  it('starts anyway, says so on /readyz, keeps the other instances delivering and queues its own', async () => {
    const sink = await startSink({ kind: 'ok' });
    const app = brokenPluginApp();
    const base = relayConfig({ dataDir: join(app, 'data'), sinkUrl: sink.url });
    const [route] = base.routes as Array<{ instances: unknown[] }>;
    route!.instances.unshift({ plugin: 'broken' });
    const relay = await startRelay({ config: writeConfig(app, base), cwd: app });

    const ready = await fetch(`${relay.url}/readyz`);
    expect(ready.status).toBe(503);
    const report = (await ready.json()) as {
      ready: boolean;
      checks: Record<string, { ok: boolean; detail?: string }>;
    };
    expect(report.ready).toBe(false);
    expect(report.checks.store).toEqual({ ok: true });
    expect(report.checks.plugins!.ok).toBe(false);
    expect(report.checks.plugins!.detail).toContain('all/broken');
    expect(report.checks.plugins!.detail).toContain('broken plugin failed on import #1');

    const { resource, body } = issueCreated('770001');
    const res = await postSentry(relay.url, resource, body);
    expect(res).toMatchObject({ status: 202, json: { status: 'accepted', deliveries: 2 } });
    await waitFor(() => sink.requests.some((r) => groupIdOf(r) === '770001'), 'the sink delivery');
    const text = await waitFor(async () => {
      const t = await metrics(relay);
      return jobs(t, 'succeeded') === 1 ? t : undefined;
    }, 'the healthy instance to finish');
    // The broken instance's delivery waits in the queue for a fixed plugin.
    expect(jobs(text, 'pending')).toBe(1);
    expect(jobs(text, 'dead')).toBe(0);
  });
});

// ---------------------------------------------------------------- durability

describe('durability of acknowledged webhooks', () => {
  afterEach(() => cleanup());

  const N = 20;

  /** Post N distinct signed webhooks; every one must be acknowledged. */
  async function postMany(relay: RelayProcess, prefix: string, n: number): Promise<string[]> {
    const issueIds = Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);
    const answers = await Promise.all(
      issueIds.map((id) => {
        const { resource, body } = issueCreated(id);
        return postSentry(relay.url, resource, body);
      }),
    );
    for (const a of answers) {
      expect(a).toMatchObject({ status: 202, json: { status: 'accepted', deliveries: 1 } });
    }
    return issueIds;
  }

  /** Every posted webhook reached the sink, signed; duplicates of one webhook-id count once. */
  async function expectAllDelivered(sink: Sink, issueIds: string[], what: string): Promise<void> {
    await waitFor(
      () => {
        const seen = new Set(sink.requests.map(groupIdOf));
        return issueIds.every((id) => seen.has(id));
      },
      () =>
        `${what}: all ${issueIds.length} webhooks at the sink (got ${sink.ids().size} distinct webhook-ids)`,
      20_000,
    );
    expect(sink.requests.every((r) => r.verified)).toBe(true);
    expect(sink.ids().size).toBe(issueIds.length);
    // One webhook-id per webhook: a redelivered request keeps its id.
    const idsByIssue = new Map<string, Set<string>>();
    for (const r of sink.requests) {
      const issue = groupIdOf(r)!;
      idsByIssue.set(issue, (idsByIssue.get(issue) ?? new Set()).add(r.webhookId));
    }
    expect([...idsByIssue.keys()].sort()).toEqual([...issueIds].sort());
    for (const set of idsByIssue.values()) expect(set.size).toBe(1);
  }

  function setup(
    sink: Sink,
    extra: Partial<Parameters<typeof relayConfig>[0]> = {},
  ): { dir: string; config: string } {
    const dir = tempDir();
    const config = writeConfig(
      dir,
      relayConfig({
        dataDir: join(dir, 'data'),
        sinkUrl: sink.url,
        // Long enough that a held request is never timed out and retried
        // while the test is looking at it.
        instance: { concurrency: 4, timeoutMs: 30_000, maxAttempts: 100 },
        webhook: { timeoutMs: 30_000 },
        ...extra,
      }),
    );
    return { dir, config };
  }

  it('delivers everything after SIGKILL with deliveries in flight', async () => {
    const sink = await startSink({ kind: 'hold' });
    const { dir, config } = setup(sink);
    const first = await startRelay({ config, cwd: dir });
    const issueIds = await postMany(first, '1', N);

    // In flight: the sink has the requests and never answers them.
    await waitFor(() => sink.requests.length >= 1, 'a delivery in flight');
    await waitFor(() => sink.requests.length >= 4, 'four deliveries in flight (concurrency 4)');
    const inFlight = sink.requests.map((r) => r.webhookId);

    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // Its lock stays behind, naming a dead process: the next start takes it over.
    expect(readFileSync(join(dir, 'data', 'relay.lock'), 'utf8').trim()).toBe(
      String(first.child.pid),
    );
    // Concurrency 4: the other 16 were never attempted.
    expect(new Set(inFlight).size).toBe(4);

    sink.setMode({ kind: 'ok' });
    const second = await startRelay({ config, cwd: dir });
    const started = second.logs.find((l) => l.msg === 'plugboard relay started')!;
    // The dead process's leases (the four in flight, and any it had leased
    // ahead to start next) were handed back at start-up.
    expect(started.recovered).toBeGreaterThanOrEqual(4);
    expect(started.recovered).toBeLessThanOrEqual(20);
    await expectAllDelivered(sink, issueIds, 'after SIGKILL');
    // The interrupted ones were sent again under the same webhook-id.
    for (const id of inFlight) {
      expect(sink.requests.filter((r) => r.webhookId === id).length).toBeGreaterThanOrEqual(2);
    }

    // De-duplication survives the crash: Sentry retrying one of them now is
    // still recognised as a redelivery.
    const { resource, body } = issueCreated(issueIds[0]!);
    const retried = await postSentry(second.url, resource, body);
    expect(retried).toMatchObject({ status: 202, json: { status: 'duplicate' } });

    const text = await waitFor(async () => {
      const t = await metrics(second);
      return jobs(t, 'succeeded') === N ? t : undefined;
    }, `${N} succeeded jobs`);
    expect(jobs(text, 'pending') + jobs(text, 'running') + jobs(text, 'dead')).toBe(0);
  });

  it('delivers everything after SIGKILL right after the acknowledgements, with the target down', async () => {
    // The target refuses every connection: nothing can have been delivered
    // when the relay dies; only the acknowledged webhooks in its store remain.
    const sink = await startSink({ kind: 'reset' });
    const { dir, config } = setup(sink);
    const first = await startRelay({ config, cwd: dir });
    const issueIds = await postMany(first, '2', N);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(sink.requests).toHaveLength(0);

    sink.setMode({ kind: 'ok' });
    const second = await startRelay({ config, cwd: dir });
    await expectAllDelivered(sink, issueIds, 'after SIGKILL with the target down');
    // Delivered exactly once each: nothing reached the sink before the crash.
    expect(sink.requests).toHaveLength(N);
    expect(second.done).toBe(false);
  });

  it('counts attempts cut short by a crash against maxAttempts, so a delivery cannot run forever', async () => {
    // maxAttempts 2: the attempt of the first process and the one of the
    // second both die with their process; the third process must give the
    // delivery up (dead) rather than start a third attempt.
    const sink = await startSink({ kind: 'hold' });
    const { dir, config } = setup(sink, {
      instance: { concurrency: 4, timeoutMs: 30_000, maxAttempts: 2 },
    });
    const first = await startRelay({ config, cwd: dir });
    await postMany(first, '7', 1);
    await waitFor(() => sink.requests.length >= 1, 'attempt 1 in flight');
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await startRelay({ config, cwd: dir });
    await waitFor(() => sink.requests.length >= 2, 'attempt 2 in flight');
    second.child.kill('SIGKILL');
    await second.exited;
    expect(new Set(sink.requests.map((r) => r.webhookId)).size).toBe(1);

    const third = await startRelay({ config, cwd: dir });
    const text = await waitFor(
      async () => {
        const t = await metrics(third);
        return jobs(t, 'dead') === 1 ? t : undefined;
      },
      () =>
        `the delivery to be dead after 2 interrupted attempts (the sink got ${sink.requests.length} requests)`,
      5000,
    );
    expect(jobs(text, 'pending') + jobs(text, 'running')).toBe(0);
    expect(sink.requests).toHaveLength(2);
  });

  it('refuses a second relay on the same data directory while the first one runs', async () => {
    const sink = await startSink({ kind: 'ok' });
    const { dir, config } = setup(sink);
    const first = await startRelay({ config, cwd: dir });

    // Both would hand each other's running deliveries back to the queue.
    const second = await runCli(['serve', '--config', config], { cwd: dir });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain('PB_STORE_UNAVAILABLE');
    expect(second.stderr).toContain(`in use by another relay (pid ${first.child.pid})`);

    // The first one is unaffected.
    const issueIds = await postMany(first, '5', 3);
    await expectAllDelivered(sink, issueIds, 'with a second relay refused');
    expect(existsSync(join(dir, 'data', 'relay.lock'))).toBe(true);
  });

  it('exits 0 on SIGTERM within the grace period and loses nothing', async () => {
    const sink = await startSink({ kind: 'delay', delayMs: 1000 });
    const graceMs = 4000;
    const { dir, config } = setup(sink, { dispatch: { shutdownGraceMs: graceMs } });
    const first = await startRelay({ config, cwd: dir });
    const issueIds = await postMany(first, '3', 6);
    await waitFor(() => sink.requests.length >= 1, 'a delivery in flight');

    const sentAt = Date.now();
    first.child.kill('SIGTERM');
    const exit = await first.exited;
    const tookMs = Date.now() - sentAt;
    expect(exit).toEqual({ code: 0, signal: null });
    // The in-flight deliveries finished (about 1 s) well inside the grace period.
    expect(tookMs).toBeLessThan(graceMs);
    const beforeRestart = sink.requests.length;
    expect(beforeRestart).toBeGreaterThanOrEqual(1);
    expect(first.logs.map((l) => l.msg)).toEqual(
      expect.arrayContaining(['shutting down', 'plugboard relay stopped']),
    );
    // A clean stop leaves no lock behind.
    expect(existsSync(join(dir, 'data', 'relay.lock'))).toBe(false);

    sink.setMode({ kind: 'ok' });
    await startRelay({ config, cwd: dir });
    await expectAllDelivered(sink, issueIds, 'after SIGTERM');
    // Drained, not interrupted: what was in flight was answered and settled
    // before the exit, so nothing is sent twice.
    expect(sink.requests).toHaveLength(issueIds.length);
  });

  it('exits at once on a second signal; what was in flight runs again at the next start', async () => {
    const sink = await startSink({ kind: 'hold' });
    const { dir, config } = setup(sink, { dispatch: { shutdownGraceMs: 30_000 } });
    const first = await startRelay({ config, cwd: dir });
    const issueIds = await postMany(first, '6', 6);
    await waitFor(() => sink.requests.length >= 4, 'four deliveries in flight');

    first.child.kill('SIGTERM');
    await waitFor(() => first.logs.some((l) => l.msg === 'shutting down'), 'the shutdown to begin');
    const sentAt = Date.now();
    first.child.kill('SIGINT');
    const exit = await first.exited;
    expect(exit).toEqual({ code: 130, signal: null });
    expect(Date.now() - sentAt).toBeLessThan(3000);

    sink.setMode({ kind: 'ok' });
    await startRelay({ config, cwd: dir });
    await expectAllDelivered(sink, issueIds, 'after a second signal');
  });

  it('does not report deliveries cut short by a shutdown to Sentry as plugin bugs', async () => {
    // With SENTRY_DSN set the relay reports unexpected errors (bugs) to
    // Sentry; aborting a slow delivery at shutdown is routine, not a bug.
    const fakeSentry = await startFakeSentry();
    const sink = await startSink({ kind: 'hold' });
    const { dir, config } = setup(sink, { dispatch: { shutdownGraceMs: 200 } });
    const relay = await startRelay({ config, cwd: dir, env: { SENTRY_DSN: fakeSentry.dsn } });
    expect(relay.logs.map((l) => l.msg)).toContain(
      'self-monitoring: reporting unexpected errors to Sentry',
    );
    await postMany(relay, '8', 2);
    await waitFor(() => sink.requests.length >= 2, 'two deliveries in flight');

    relay.child.kill('SIGTERM');
    expect(await relay.exited).toEqual({ code: 0, signal: null });
    // The relay flushes its Sentry client before it exits: what was reported has arrived.
    const reported = fakeSentry.envelopes.filter((e) => e.includes('"exception"'));
    expect(reported.map((e) => /"value":"([^"]*)"/.exec(e)?.[1])).toEqual([]);
  });

  it('on SIGTERM, hands deliveries that outlast the grace period back for the next start', async () => {
    const sink = await startSink({ kind: 'hold' });
    const graceMs = 300;
    const { dir, config } = setup(sink, { dispatch: { shutdownGraceMs: graceMs } });
    const first = await startRelay({ config, cwd: dir });
    const issueIds = await postMany(first, '4', 6);
    await waitFor(() => sink.requests.length >= 4, 'four deliveries in flight');

    const sentAt = Date.now();
    first.child.kill('SIGTERM');
    const exit = await first.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - sentAt).toBeLessThan(graceMs + 3000);
    expect(first.logs).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ msg: 'released unfinished deliveries for the next start' }),
      ]),
    );

    sink.setMode({ kind: 'ok' });
    const second = await startRelay({ config, cwd: dir });
    const started = second.logs.find((l) => l.msg === 'plugboard relay started')!;
    // Released on the way out, so nothing was left leased for the next start.
    expect(started.recovered).toBe(0);
    await expectAllDelivered(sink, issueIds, 'after SIGTERM past the grace period');
  });
});
