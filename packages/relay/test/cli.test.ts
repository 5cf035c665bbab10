import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SAMPLE_KINDS } from '@plugboard/sdk';
import {
  brokenPluginApp,
  CLIENT_SECRET,
  cleanup,
  issueCreated,
  postSentry,
  LEGACY_TOKEN,
  RELAY_DIR,
  relayConfig,
  requireBuiltRelay,
  runCli,
  startRelay,
  startSink,
  tempDir,
  waitFor,
  WEBHOOK_SECRET,
  writeConfig,
} from './integration/helpers';

// The built CLI (`node packages/relay/bin/plugboard.js <command>`), run with
// execFile from a fresh temporary working directory each time.

beforeAll(requireBuiltRelay);
afterAll(() => cleanup({ removeTemp: true }));

const versionOf = (packageJson: string): string =>
  (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
const RELAY_VERSION = versionOf(join(RELAY_DIR, 'package.json'));
const WEBHOOK_VERSION = versionOf(join(RELAY_DIR, '..', 'notifier-webhook', 'package.json'));
const JIRA_VERSION = versionOf(join(RELAY_DIR, '..', 'notifier-jira', 'package.json'));
const IM_VERSION = versionOf(join(RELAY_DIR, '..', 'notifier-im', 'package.json'));
const DINGTALK_VERSION = versionOf(join(RELAY_DIR, '..', 'notifier-dingtalk', 'package.json'));
const FEISHU_VERSION = versionOf(join(RELAY_DIR, '..', 'notifier-feishu', 'package.json'));

interface PluginRow {
  name: string;
  group: string;
  packageName: string;
  packageVersion: string;
  status: string;
  error?: { code: string; message: string; chain: string };
}

/** The table `plugboard plugins` prints, as rows of its columns. */
function parseTable(stdout: string): Array<Record<string, string>> {
  const [header, ...lines] = stdout.trimEnd().split('\n');
  const names = header!.split(/\s{2,}/);
  const starts = names.map((n) => header!.indexOf(n));
  return lines.map((line) =>
    Object.fromEntries(
      names.map((n, i) => [n, line.slice(starts[i], starts[i + 1] ?? line.length).trim()]),
    ),
  );
}

describe('plugboard plugins', () => {
  afterEach(() => cleanup());

  it('lists every bundled notifier with package, version and status', async () => {
    const cwd = tempDir('pb-cli-');
    const res = await runCli(['plugins'], { cwd });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const rows = parseTable(res.stdout);
    expect(rows).toEqual([
      {
        NAME: 'log',
        GROUP: 'plugboard.notifiers',
        PACKAGE: `@plugboard/relay@${RELAY_VERSION}`,
        STATUS: 'loaded',
        ERROR: '',
      },
      {
        NAME: 'webhook',
        GROUP: 'plugboard.notifiers',
        PACKAGE: `@plugboard/notifier-webhook@${WEBHOOK_VERSION}`,
        STATUS: 'loaded',
        ERROR: '',
      },
      {
        NAME: 'jira',
        GROUP: 'plugboard.notifiers',
        PACKAGE: `@plugboard/notifier-jira@${JIRA_VERSION}`,
        STATUS: 'loaded',
        ERROR: '',
      },
      {
        NAME: 'im',
        GROUP: 'plugboard.notifiers',
        PACKAGE: `@plugboard/notifier-im@${IM_VERSION}`,
        STATUS: 'loaded',
        ERROR: '',
      },
      {
        NAME: 'dingtalk',
        GROUP: 'plugboard.notifiers',
        PACKAGE: `@plugboard/notifier-dingtalk@${DINGTALK_VERSION}`,
        STATUS: 'loaded',
        ERROR: '',
      },
      {
        NAME: 'feishu',
        GROUP: 'plugboard.notifiers',
        PACKAGE: `@plugboard/notifier-feishu@${FEISHU_VERSION}`,
        STATUS: 'loaded',
        ERROR: '',
      },
    ]);

    const json = await runCli(['plugins', '--json'], { cwd });
    expect(json.code).toBe(0);
    const list = JSON.parse(json.stdout) as PluginRow[];
    expect(list).toEqual([
      expect.objectContaining({
        name: 'log',
        packageName: '@plugboard/relay',
        packageVersion: RELAY_VERSION,
        status: 'loaded',
      }),
      expect.objectContaining({
        name: 'webhook',
        packageName: '@plugboard/notifier-webhook',
        packageVersion: WEBHOOK_VERSION,
        status: 'loaded',
      }),
      expect.objectContaining({
        name: 'jira',
        packageName: '@plugboard/notifier-jira',
        packageVersion: JIRA_VERSION,
        status: 'loaded',
      }),
      expect.objectContaining({
        name: 'im',
        packageName: '@plugboard/notifier-im',
        packageVersion: IM_VERSION,
        status: 'loaded',
      }),
      expect.objectContaining({
        name: 'dingtalk',
        packageVersion: DINGTALK_VERSION,
        status: 'loaded',
      }),
      expect.objectContaining({ name: 'feishu', packageVersion: FEISHU_VERSION, status: 'loaded' }),
    ]);
  });

  it('lists a plugin that throws on import as failed, with its first error, and exits 1', async () => {
    const cwd = brokenPluginApp();
    const res = await runCli(['plugins'], { cwd });
    expect(res.code).toBe(1);
    const rows = parseTable(res.stdout);
    expect(rows.map((r) => [r.NAME, r.STATUS])).toEqual([
      ['log', 'loaded'],
      ['webhook', 'loaded'],
      ['jira', 'loaded'],
      ['im', 'loaded'],
      ['dingtalk', 'loaded'],
      ['feishu', 'loaded'],
      ['broken', 'failed'],
    ]);
    const broken = rows[6]!;
    expect(broken.PACKAGE).toBe('plugboard-notifier-broken@1.2.3');
    expect(broken.ERROR).toMatch(/^PB_PLUGIN_IMPORT_FAILED: plugboard-notifier-broken@1\.2\.3 /);
    expect(broken.ERROR).toContain('broken plugin failed on import #1');
    expect(broken.ERROR).not.toContain('#2');

    const json = await runCli(['plugins', '--json'], { cwd });
    const list = JSON.parse(json.stdout) as PluginRow[];
    expect(list.map((p) => [p.name, p.status])).toEqual([
      ['log', 'loaded'],
      ['webhook', 'loaded'],
      ['jira', 'loaded'],
      ['im', 'loaded'],
      ['dingtalk', 'loaded'],
      ['feishu', 'loaded'],
      ['broken', 'failed'],
    ]);
    const failed = list[6]!;
    expect(failed).toMatchObject({
      packageName: 'plugboard-notifier-broken',
      packageVersion: '1.2.3',
      error: {
        code: 'PB_PLUGIN_IMPORT_FAILED',
        message: expect.stringContaining('broken plugin failed on import #1'),
      },
    });
    expect(failed.error!.chain).not.toContain('#2');
    // Scripts reading --json learn about the failure from the exit code too.
    expect(json.code).toBe(1);
  });
});

describe('plugboard check-config', () => {
  afterEach(() => cleanup());

  const route = (name: string, instances: unknown[], extra: object = {}): unknown => ({
    name,
    instances,
    ...extra,
  });

  it('accepts a valid configuration', async () => {
    const cwd = tempDir('pb-cli-');
    const config = writeConfig(cwd, {
      listen: '127.0.0.1:8181',
      sentry: { clientSecret: CLIENT_SECRET },
      routes: [
        route(
          'alerts',
          [
            {
              name: 'team-hook',
              plugin: 'webhook',
              config: { urls: 'https://hooks.example.com/sentry', secret: WEBHOOK_SECRET },
            },
          ],
          // Without it, `alerts` would shadow `everything` (a check-config warning).
          { continue: true },
        ),
        route('everything', [{ plugin: 'log', config: { prefix: 'ALERT' } }]),
      ],
    });
    const res = await runCli(['check-config', '--config', config], { cwd });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^config OK \(.*plugboard\.yaml\)/);
    expect(res.stdout).toContain('listen 127.0.0.1:8181, 2 route(s), 2 instance(s)');
  });

  it('warns about a route that an earlier catch-all route without continue shadows', async () => {
    const cwd = tempDir('pb-cli-');
    const config = writeConfig(cwd, {
      routes: [
        route('everything', [{ plugin: 'log' }]),
        {
          name: 'production',
          match: { levels: ['error', 'fatal'] },
          instances: [
            {
              plugin: 'webhook',
              config: { urls: 'https://hooks.example.com/sentry', secret: WEBHOOK_SECRET },
            },
          ],
        },
      ],
    });
    const res = await runCli(['check-config', '--config', config], { cwd });
    expect(res.code).toBe(0);
    expect(res.stderr).toBe(
      'plugboard: warning: route production (routes[1]) can never match: route everything ' +
        '(routes[0]) before it takes everything it would and has no continue: true; add ' +
        'continue: true to everything, or move production above it\n',
    );
    expect(res.stdout).toContain('2 route(s), 2 instance(s); 1 warning(s) above');
  });

  it('names the route, the instance and the field of a bad instance setting, without its secret', async () => {
    const cwd = tempDir('pb-cli-');
    const config = writeConfig(cwd, {
      routes: [
        route('alerts', [
          {
            name: 'team-hook',
            plugin: 'webhook',
            config: { urls: 'not a url', secret: WEBHOOK_SECRET },
          },
        ]),
      ],
    });
    const res = await runCli(['check-config', '--config', config], { cwd });
    // Configuration errors exit with 78 (EX_CONFIG), as docs/errors.md says.
    expect(res.code).toBe(78);
    expect(res.stdout).not.toContain('config OK');
    expect(res.stderr).toContain('PB_CONFIG_FIELD_INVALID');
    expect(res.stderr).toContain('routes[0] (alerts) instances[0] (team-hook)');
    expect(res.stderr).toMatch(/\burls\b/);
    expect(res.stderr).toContain('not a url');
    expect(res.stderr).not.toContain(WEBHOOK_SECRET);

    // A field of the wrong type is named as config.<field>.
    const typed = writeConfig(
      cwd,
      {
        routes: [
          route('alerts', [
            {
              name: 'team-hook',
              plugin: 'webhook',
              config: { urls: 'https://hooks.example.com/x', timeoutMs: 'soon' },
            },
          ]),
        ],
      },
      'typed.yaml',
    );
    const res2 = await runCli(['check-config', '--config', typed], { cwd });
    expect(res2.code).toBe(78);
    expect(res2.stderr).toContain('routes[0] (alerts) instances[0] (team-hook)');
    expect(res2.stderr).toContain('config.timeoutMs');
  });

  it('names an unknown plugin and lists the known ones', async () => {
    const cwd = tempDir('pb-cli-');
    const config = writeConfig(cwd, {
      routes: [route('alerts', [{ plugin: 'slack-notifier', config: {} }])],
    });
    const res = await runCli(['check-config', '--config', config], { cwd });
    expect(res.code).toBe(78);
    expect(res.stderr).toContain('PB_CONFIG_PLUGIN_UNKNOWN');
    expect(res.stderr).toContain('"slack-notifier"');
    expect(res.stderr).toContain('routes[0] (alerts)');
    expect(res.stderr).toMatch(/known: log, webhook, jira, im, dingtalk, feishu\b/);
  });

  it('names an environment variable a ${env:...} reference needs', async () => {
    const cwd = tempDir('pb-cli-');
    const config = writeConfig(cwd, {
      sentry: { clientSecret: '${env:PB_IT_MISSING_CLIENT_SECRET}' },
    });
    const res = await runCli(['check-config', '--config', config], { cwd });
    expect(res.code).toBe(78);
    expect(res.stderr).toContain('PB_CONFIG_SECRET_UNRESOLVED');
    expect(res.stderr).toContain('PB_IT_MISSING_CLIENT_SECRET');
    expect(res.stderr).toContain('sentry.clientSecret');

    // Set, it resolves (and is not printed).
    const ok = await runCli(['check-config', '--config', config], {
      cwd,
      env: { PB_IT_MISSING_CLIENT_SECRET: 'resolved-secret-value' },
    });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('config OK');
    expect(ok.stdout + ok.stderr).not.toContain('resolved-secret-value');
  });

  it('lets plugboard plugins list plugins even when a secret reference is unset', async () => {
    const cwd = tempDir('pb-cli-');
    const config = writeConfig(cwd, {
      sentry: { clientSecret: '${env:PB_IT_MISSING_CLIENT_SECRET}' },
    });
    const res = await runCli(['plugins', '--config', config], { cwd });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^log\b/m);
    expect(res.stdout).toMatch(/^webhook\b/m);
  });
});

describe('plugboard migrate', () => {
  it('creates the SQLite store and says where', async () => {
    const cwd = tempDir('pb-cli-');
    const config = writeConfig(cwd, { dataDir: `${cwd}/data` });
    const res = await runCli(['migrate', '--config', config], { cwd });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/store up to date: sqlite .*data/);
  });

  it('names an unreachable PostgreSQL without printing its password', async () => {
    const cwd = tempDir('pb-cli-');
    const config = writeConfig(cwd, {
      databaseUrl: 'postgres://relay:hunter2-secret@127.0.0.1:1/plugboard',
    });
    const res = await runCli(['migrate', '--config', config], { cwd });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('PB_STORE_UNAVAILABLE');
    expect(res.stderr).toContain('postgres://relay:****@127.0.0.1:1/plugboard');
    expect(res.stdout + res.stderr).not.toContain('hunter2-secret');
  });
});

describe('plugboard check-config with a plugin that fails to load', () => {
  afterEach(() => cleanup());

  it('reports the instance and the error, does not say OK, and exits 1', async () => {
    const cwd = brokenPluginApp();
    const config = writeConfig(cwd, {
      routes: [
        {
          name: 'alerts',
          instances: [{ plugin: 'broken' }, { plugin: 'log' }],
        },
      ],
    });
    const res = await runCli(['check-config', '--config', config], { cwd });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('alerts/broken: plugin broken failed to load');
    expect(res.stderr).toContain('broken plugin failed on import #1');
    expect(res.stdout).not.toContain('config OK');
    expect(res.stdout).toContain('1 route(s), 2 instance(s)');
  });
});

describe('plugboard send-test', () => {
  afterEach(() => cleanup());

  /** A port nothing listens on (taken from the OS, then released). */
  async function closedPort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as { port: number };
    await new Promise((r) => server.close(r));
    return port;
  }

  it('posts a signed sample that the relay acknowledges and delivers', async () => {
    const sink = await startSink({ kind: 'ok' });
    const dir = tempDir('pb-cli-');
    const config = writeConfig(dir, relayConfig({ dataDir: join(dir, 'data'), sinkUrl: sink.url }));
    const relay = await startRelay({ config, cwd: dir });

    const res = await runCli(
      ['send-test', 'issue.created', '--config', config, '--url', relay.url],
      {
        cwd: dir,
      },
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^202 /);
    expect(JSON.parse(res.stdout.slice(4))).toMatchObject({ status: 'accepted', deliveries: 1 });

    const delivered = await waitFor(
      () => sink.requests.find((r) => (r.body as { type?: string }).type === 'issue.created'),
      'the issue.created notification at the sink',
    );
    expect(delivered.verified).toBe(true);

    // Without --url it posts to the configured listen address; the legacy
    // sample goes to the legacy endpoint with the configured token.
    const cliConfig = writeConfig(
      dir,
      {
        listen: relay.url.replace('http://', ''),
        sentry: { clientSecret: CLIENT_SECRET },
        legacy: { token: LEGACY_TOKEN },
      },
      'cli.yaml',
    );
    const legacy = await runCli(['send-test', 'legacy_webhook', '--config', cliConfig], {
      cwd: dir,
    });
    expect(legacy.code).toBe(0);
    expect(legacy.stdout).toMatch(/^202 /);
    await waitFor(
      () =>
        sink.requests.find(
          (r) => (r.body as { type?: string }).type === 'legacy_webhook.triggered',
        ),
      'the legacy notification at the sink',
    );
    expect(res.stdout + res.stderr + legacy.stdout + legacy.stderr).not.toContain(CLIENT_SECRET);
  });

  it('sends a fresh sample each time, and says when --exact made a duplicate', async () => {
    const sink = await startSink({ kind: 'ok' });
    const dir = tempDir('pb-cli-');
    const config = writeConfig(dir, relayConfig({ dataDir: join(dir, 'data'), sinkUrl: sink.url }));
    const relay = await startRelay({ config, cwd: dir });
    const send = (...extra: string[]) =>
      runCli(['send-test', 'issue.created', '--config', config, '--url', relay.url, ...extra], {
        cwd: dir,
      });
    const answer = (stdout: string) =>
      JSON.parse(stdout.slice(4)) as { status: string; duplicateOf?: string };

    // Content de-duplication survives restarts: the recorded sample twice is one webhook.
    for (const res of [await send(), await send()]) {
      expect(res.code).toBe(0);
      expect(answer(res.stdout)).toMatchObject({ status: 'accepted' });
      expect(res.stderr).toBe('');
    }
    await waitFor(() => sink.requests.length === 2, 'two deliveries at the sink');
    const ids = sink.requests.map(
      (r) => (r.body as { data: { group: { id: string } } }).data.group.id,
    );
    expect(new Set(ids).size).toBe(2);

    const first = await send('--exact');
    expect(answer(first.stdout).status).toBe('accepted');
    const again = await send('--exact');
    expect(again.code).toBe(0);
    expect(answer(again.stdout).status).toBe('duplicate');
    expect(again.stderr).toMatch(
      /took this issue\.created as a duplicate of webhook \S+: .*nothing is delivered/,
    );
    expect(again.stderr).toContain('leave out --exact');
  });

  it('lists the known kinds for an unknown kind', async () => {
    const cwd = tempDir('pb-cli-');
    const config = writeConfig(cwd, { sentry: { clientSecret: CLIENT_SECRET } });
    const res = await runCli(
      ['send-test', 'issue.exploded', '--config', config, '--url', 'http://127.0.0.1:9'],
      { cwd },
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('issue.exploded');
    for (const kind of SAMPLE_KINDS) expect(res.stderr).toContain(kind);
  });

  it('says it cannot reach the relay when nothing listens', async () => {
    const cwd = tempDir('pb-cli-');
    const config = writeConfig(cwd, { sentry: { clientSecret: CLIENT_SECRET } });
    const port = await closedPort();
    const res = await runCli(
      ['send-test', 'issue.created', '--config', config, '--url', `http://127.0.0.1:${port}`],
      { cwd },
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('cannot reach the relay');
    expect(res.stderr).toContain('--url');
    expect(res.stderr).not.toContain(CLIENT_SECRET);
  });
});

describe('plugboard routes test', () => {
  afterEach(() => cleanup());

  it('takes the sample names send-test and render take', async () => {
    const cwd = tempDir('pb-cli-');
    const config = writeConfig(cwd, {
      routes: [
        { name: 'errors', matchers: ['level="error"'], instances: [{ plugin: 'log' }] },
        { name: 'rest', instances: [{ plugin: 'log' }] },
      ],
    });
    const issue = await runCli(['routes', 'test', 'issue.created', '--config', config], { cwd });
    expect(issue.stderr).toBe('');
    expect(issue.code).toBe(0);
    expect(issue.stdout).toMatch(
      /^issue\.created from issue\.created \(resource issue, from the sample\)/,
    );
    expect(issue.stdout).toContain('1. errors: MATCH → errors/log');

    const legacy = await runCli(
      ['routes', 'test', 'legacy_webhook', '--config', config, '--json'],
      {
        cwd,
      },
    );
    expect(legacy.code).toBe(0);
    expect(JSON.parse(legacy.stdout)).toMatchObject({
      kind: 'legacy_webhook.triggered',
      resource: 'legacy_webhook',
    });

    const unknown = await runCli(['routes', 'test', 'issue.exploded', '--config', config], { cwd });
    expect(unknown.code).toBe(65);
    expect(unknown.stderr).toContain('no sample webhook "issue.exploded"; known kinds:');
  });
});

describe('plugboard jira fields', () => {
  it('prints the fields of a project and issue type from a (local, fake) JIRA', async () => {
    const fields = [
      {
        fieldId: 'summary',
        name: 'Summary',
        required: true,
        operations: ['set'],
        schema: { type: 'string', system: 'summary' },
      },
      {
        fieldId: 'duedate',
        name: 'Due Date',
        required: false,
        operations: ['set'],
        schema: { type: 'date', system: 'duedate' },
      },
    ];
    const seen: Array<{ url: string; auth: string | undefined }> = [];
    const jira = createHttpServer((req, res) => {
      seen.push({ url: req.url ?? '', auth: req.headers.authorization });
      const path = (req.url ?? '').split('?')[0];
      const page = (values: unknown[]) =>
        JSON.stringify({ startAt: 0, maxResults: 50, total: values.length, isLast: true, values });
      res.setHeader('content-type', 'application/json');
      if (path === '/rest/api/2/issue/createmeta/OPS/issuetypes') {
        res.end(page([{ id: '1', name: 'Bug', subtask: false }]));
      } else if (path === '/rest/api/2/issue/createmeta/OPS/issuetypes/1') {
        res.end(page(fields));
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    await new Promise<void>((r) => jira.listen(0, '127.0.0.1', r));
    const port = (jira.address() as AddressInfo).port;
    try {
      const cwd = tempDir('pb-cli-');
      const res = await runCli(
        [
          'jira',
          'fields',
          '--url',
          `http://127.0.0.1:${port}`,
          '--deployment',
          'server',
          '--project',
          'OPS',
          '--issue-type',
          'Bug',
        ],
        { cwd, env: { JIRA_TOKEN: 'pat-secret-for-cli-test' } },
      );
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/summary.*Summary/);
      expect(res.stdout).toMatch(/duedate.*Due Date.*date/);
      expect(seen[0]?.auth).toBe('Bearer pat-secret-for-cli-test');
      expect(res.stdout + res.stderr).not.toContain('pat-secret-for-cli-test');
    } finally {
      jira.close();
    }
  });
});

describe('plugboard deliveries', () => {
  afterEach(() => cleanup());

  it('lists a dead delivery, and replays it once the target is back', async () => {
    const sink = await startSink({ kind: 'reset' });
    const cwd = tempDir('pb-cli-');
    const config = writeConfig(cwd, {
      ...relayConfig({ dataDir: `${cwd}/data`, sinkUrl: sink.url, instance: { maxAttempts: 1 } }),
      api: { token: 'cli-api-token-0123456789' },
    });
    const relay = await startRelay({ config, cwd });
    const { resource, body } = issueCreated('8100');
    expect((await postSentry(relay.url, resource, body)).status).toBe(202);

    const cli = (...args: string[]) =>
      runCli(['deliveries', ...args, '--config', config, '--url', relay.url], { cwd });
    let listed = await cli('list', '--state', 'dead');
    await waitFor(async () => {
      listed = await cli('list', '--state', 'dead');
      return /dead/.test(listed.stdout);
    }, 'the delivery to be dead');
    expect(listed.code).toBe(0);
    const id = listed.stdout.split(/\s+/)[0]!;
    expect(listed.stdout).toMatch(/all\/sink\s+front-end\s+attempts 1\/1/);

    const shown = await cli('show', id);
    expect(JSON.parse(shown.stdout)).toMatchObject({ delivery: { id, state: 'dead' } });

    sink.setMode({ kind: 'ok' });
    const replayed = await cli('replay', id);
    expect(replayed.stdout).toBe(`replayed 1: ${id}\n`);
    await waitFor(() => sink.requests.length === 1, 'the replayed delivery at the sink');
    expect(sink.requests[0]!.verified).toBe(true);

    const none = await cli('replay');
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/name delivery ids, or a filter/);
  });

  it('says the relay itself needs api.token when its API is disabled', async () => {
    const cwd = tempDir('pb-cli-');
    // The relay runs without api.token; the CLI's own configuration has one.
    const relay = await startRelay({
      config: writeConfig(
        cwd,
        relayConfig({ dataDir: `${cwd}/data`, sinkUrl: 'http://127.0.0.1:9' }),
      ),
      cwd,
    });
    const cliConfig = writeConfig(cwd, { api: { token: 'cli-api-token-0123456789' } }, 'cli.yaml');
    const res = await runCli(['deliveries', 'list', '--config', cliConfig, '--url', relay.url], {
      cwd,
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^plugboard: \[PB_API_DISABLED\] /);
    expect(res.stderr).not.toContain('PB_SIGNATURE_MISSING');
    expect(res.stderr).toMatch(/started without api\.token/);
    expect(res.stderr).toMatch(/Start the relay itself .*api\.token/);
  });
});
