import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSample } from '@plugboard/sdk';
import {
  cleanup,
  RELAY_DIR,
  requireBuiltRelay,
  runCli,
  startSink,
  tempDir,
  WEBHOOK_SECRET,
  writeConfig,
} from './integration/helpers';

// `plugboard render <plugin> <fixture>`, run as the BUILT CLI. The working
// directory is the relay package, whose dependencies resolve the workspace's
// notifier packages; the config names them as extra plugin packages so the
// test does not depend on which notifiers the relay bundles.

beforeAll(requireBuiltRelay);
afterAll(() => cleanup({ removeTemp: true }));

const TOKEN = 'render-test-token-0001';

function configWith(instances: Array<{ plugin: string; config: Record<string, unknown> }>): string {
  return writeConfig(tempDir('pb-render-'), {
    plugins: { packages: ['@plugboard/notifier-dingtalk', '@plugboard/notifier-feishu'] },
    routes: [{ name: 'ops', instances }],
  });
}

describe('plugboard render', () => {
  it('prints the DingTalk markdown body for a sample, from the route instance config', async () => {
    const config = configWith([
      {
        plugin: 'dingtalk',
        config: {
          webhookUrl: `https://oapi.dingtalk.com/robot/send?access_token=${TOKEN}`,
          secret: 'SECrender',
          keyword: 'Sentry',
          atMobiles: '13800000000',
        },
      },
    ]);
    const res = await runCli(['render', 'dingtalk', 'issue.created', '--config', config], {
      cwd: RELAY_DIR,
    });
    expect(res.stderr).toContain('dingtalk would send');
    expect(res.code).toBe(0);
    const body = JSON.parse(res.stdout) as {
      msgtype: string;
      markdown: { title: string; text: string };
      at: { atMobiles: string[] };
    };
    expect(body.msgtype).toBe('markdown');
    expect(body.markdown.text).toContain('front-end');
    expect(body.markdown.text).toContain('FRONT-END-9');
    expect(body.markdown.text.startsWith('Sentry')).toBe(true);
    expect(body.at.atMobiles).toEqual(['13800000000']);
    // Nothing is sent, and nothing secret is printed.
    expect(res.stdout + res.stderr).not.toContain(TOKEN);
    expect(res.stdout + res.stderr).not.toContain('SECrender');
  });

  it('takes --set over the config and --raw prints the exact body', async () => {
    const res = await runCli(
      [
        'render',
        'dingtalk',
        'metric_alert.critical',
        '--set',
        `webhookUrl=https://oapi.dingtalk.com/robot/send?access_token=${TOKEN}`,
        '--set',
        'template={{project.name}} {{title}}',
        '--raw',
        '--config',
        configWith([{ plugin: 'feishu', config: {} }]),
      ],
      { cwd: RELAY_DIR },
    );
    expect(res.code).toBe(0);
    expect(res.stdout.trim().split('\n')).toHaveLength(1);
    const body = JSON.parse(res.stdout) as { markdown: { text: string } };
    expect(body.markdown.text).toBe('front-end Critical: Too many errors');
  });

  it('renders a Feishu card from a webhook JSON file', async () => {
    const dir = tempDir('pb-render-file-');
    const file = join(dir, 'hook.json');
    writeFileSync(file, JSON.stringify(loadSample('event_alert.triggered').body));
    const res = await runCli(
      [
        'render',
        'feishu',
        file,
        '--config',
        configWith([
          {
            plugin: 'feishu',
            config: { webhookUrl: 'https://open.feishu.cn/open-apis/bot/v2/hook/abc' },
          },
        ]),
      ],
      { cwd: RELAY_DIR },
    );
    expect(res.code).toBe(0);
    const body = JSON.parse(res.stdout) as {
      msg_type: string;
      card: { header: { title: { content: string } } };
    };
    expect(body.msg_type).toBe('interactive');
    expect(body.card.header.title.content).toBe(
      'Alert rule fired: ReferenceError: heck is not defined',
    );
  });

  it('runs notify() of a notifier without render() against a recorder and prints the request', async () => {
    // The configured URL is a real local receiver: render must not reach it.
    const sink = await startSink({ kind: 'ok' });
    const res = await runCli(
      [
        'render',
        'webhook',
        'issue.created',
        '--set',
        `urls=${sink.url}/hook?token=${TOKEN}`,
        '--set',
        `secret=${WEBHOOK_SECRET}`,
        '--set',
        `headers=Authorization: Bearer ${TOKEN}\nX-Team: ops`,
        '--config',
        configWith([{ plugin: 'feishu', config: {} }]),
      ],
      { cwd: RELAY_DIR },
    );
    expect(res.code).toBe(0);
    expect(sink.requests).toHaveLength(0);
    const [head, ...rest] = res.stdout.split('\n\n');
    const lines = head!.split('\n');
    expect(lines[0]).toBe(`POST ${sink.url}/hook?token=redacted`);
    expect(lines).toContain('content-type: application/json');
    expect(lines).toContain('authorization: [redacted]');
    expect(lines).toContain('x-team: ops');
    expect(lines.some((l) => /^webhook-signature: v1,/.test(l))).toBe(true);
    // What the webhook notifier really sends: its JSON envelope, not a text template.
    const body = JSON.parse(rest.join('\n\n')) as { type: string; data: { group: unknown } };
    expect(body.type).toBe('issue.created');
    expect(body.data.group).toMatchObject({ shortId: 'FRONT-END-9' });
    const length = Number(lines.find((l) => l.startsWith('content-length: '))!.split(': ')[1]);
    expect(res.stderr).toContain(
      `webhook would send POST ${sink.url}/hook?token=redacted: ${length} bytes of application/json`,
    );
    expect(res.stderr).toContain('nothing was sent');
    expect(res.stdout + res.stderr).not.toContain(TOKEN);
    expect(res.stdout + res.stderr).not.toContain(WEBHOOK_SECRET);
  });

  it('says plainly when a notifier without render() cannot be previewed', async () => {
    const res = await runCli(
      [
        'render',
        'webhook',
        'issue.created',
        '--config',
        configWith([{ plugin: 'feishu', config: {} }]),
      ],
      { cwd: RELAY_DIR },
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(
      /webhook has no render\(\), and its notify\(\) cannot be previewed without its settings \(urls\)/,
    );
  });

  it('prints the one line the built-in log notifier writes', async () => {
    const res = await runCli(
      [
        'render',
        'log',
        'issue.created',
        '--config',
        configWith([{ plugin: 'log', config: { prefix: 'PAGE', stream: 'stdout' } }]),
      ],
      { cwd: RELAY_DIR },
    );
    expect(res.stderr).toContain('log would send');
    expect(res.code).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^PAGE \[issue\.created\] front-end: FRONT-END-9 /);
  });

  it('fails clearly on an unknown fixture or plugin', async () => {
    const config = configWith([{ plugin: 'feishu', config: {} }]);
    const missing = await runCli(['render', 'dingtalk', 'nope.json', '--config', config], {
      cwd: RELAY_DIR,
    });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('cannot read nope.json: ENOENT');
    // A name that is no file is taken for a sample kind: the known ones are listed.
    const kind = await runCli(['render', 'dingtalk', 'issue.exploded', '--config', config], {
      cwd: RELAY_DIR,
    });
    expect(kind.code).not.toBe(0);
    expect(kind.stderr).toContain('no sample webhook "issue.exploded"; known kinds: issue.created');
    const unknown = await runCli(
      ['render', 'no-such-plugin', 'issue.created', '--config', config],
      {
        cwd: RELAY_DIR,
      },
    );
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('no-such-plugin');
  });
});
