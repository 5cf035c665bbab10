import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSample } from '@plugboard/sdk';
import {
  cleanup,
  RELAY_DIR,
  requireBuiltRelay,
  runCli,
  tempDir,
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

  it('prints the default text for a notifier without render()', async () => {
    const res = await runCli(
      [
        'render',
        'webhook',
        'issue.created',
        '--config',
        configWith([{ plugin: 'feishu', config: {} }]),
      ],
      {
        cwd: RELAY_DIR,
      },
    );
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('### New issue: ReferenceError: blooopy is not defined');
    expect(res.stdout).toContain('FRONT-END-9');
  });

  it('fails clearly on an unknown fixture or plugin', async () => {
    const config = configWith([{ plugin: 'feishu', config: {} }]);
    const missing = await runCli(['render', 'dingtalk', 'nope.json', '--config', config], {
      cwd: RELAY_DIR,
    });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('neither a sample kind');
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
