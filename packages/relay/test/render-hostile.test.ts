import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostileLeaks, hostileNotification, hostileWebhook } from '@plugboard/sdk/testing';
import {
  cleanup,
  RELAY_DIR,
  requireBuiltRelay,
  runCli,
  tempDir,
  writeConfig,
} from './integration/helpers';

// `plugboard render <plugin> <file>` (the BUILT CLI) for a webhook whose
// every piece of event text is hostile: what it prints is what would be
// sent, and holds no link but the template's and no mention but the
// configured ones.

beforeAll(requireBuiltRelay);
afterAll(() => cleanup({ removeTemp: true }));

const ISSUE_URL = hostileNotification('event_alert.triggered').url;

function files(): { hook: string; config: string } {
  const dir = tempDir('pb-render-hostile-');
  const hook = join(dir, 'hook.json');
  writeFileSync(hook, JSON.stringify(hostileWebhook('event_alert.triggered').body));
  const config = writeConfig(dir, {
    plugins: { packages: ['@plugboard/notifier-dingtalk', '@plugboard/notifier-feishu'] },
    routes: [{ name: 'ops', instances: [{ plugin: 'log', config: {} }] }],
  });
  return { hook, config };
}

async function render(plugin: string, sets: string[] = []): Promise<string> {
  const { hook, config } = files();
  const args = ['render', plugin, hook, '--raw', '--config', config];
  for (const set of sets) args.push('--set', set);
  const res = await runCli(args, { cwd: RELAY_DIR });
  expect(res.stderr).toContain(`${plugin} would send`);
  expect(res.code).toBe(0);
  return res.stdout;
}

/** Unescaped `[label](target)` targets in Markdown text. */
const targets = (text: string): string[] =>
  [...text.matchAll(/(?<!\\)\]\(([^)]*)\)/g)].map((m) => m[1] as string);

describe('plugboard render, hostile event text', () => {
  it('Feishu post: every link goes to the issue, no mention', async () => {
    const out = await render('feishu', [
      'webhookUrl=https://open.feishu.cn/open-apis/bot/v2/hook/x',
      'msgType=post',
    ]);
    const body = JSON.parse(out) as {
      content: { post: { zh_cn: { content: Array<Array<{ tag: string; href?: string }>> } } };
    };
    const elements = body.content.post.zh_cn.content.flat();
    expect(elements.filter((e) => e.tag === 'a').map((e) => e.href)).toEqual([ISSUE_URL]);
    expect(elements.some((e) => e.tag === 'at')).toBe(false);
    expect(hostileLeaks(body)).toEqual([]);
  });

  it('Feishu card: lark_md links only to the issue', async () => {
    const out = await render('feishu', [
      'webhookUrl=https://open.feishu.cn/open-apis/bot/v2/hook/x',
    ]);
    const body = JSON.parse(out) as {
      card: { elements: Array<{ tag: string; text?: { content: string } }> };
    };
    const markdown = body.card.elements.map((e) => e.text?.content ?? '').join('\n');
    expect(targets(markdown)).toEqual([ISSUE_URL]);
    expect(hostileLeaks(body)).toEqual([]);
  });

  it('DingTalk: one link, to the issue; nobody mentioned', async () => {
    const out = await render('dingtalk', [
      'webhookUrl=https://oapi.dingtalk.com/robot/send?access_token=render-hostile',
    ]);
    const body = JSON.parse(out) as { markdown: { text: string }; at: { isAtAll: boolean } };
    expect(targets(body.markdown.text)).toEqual([ISSUE_URL]);
    expect(body.at.isAtAll).toBe(false);
    expect(hostileLeaks(body)).toEqual([]);
  });

  // Without render(), the CLI runs notify() against a recorder and prints
  // each request: `METHOD URL`, headers, a blank line, the body.
  const requestBody = (out: string): unknown => JSON.parse(out.slice(out.indexOf('\n\n') + 2));

  it('IM: the text keeps the issue link, nothing else links or mentions', async () => {
    const out = await render('im', [
      'apiUrl=https://im.example.test/open/api',
      'clientId=render',
      'clientSecret=render-secret-0123',
      'sender=bot',
      'recipients=ann@example.com',
    ]);
    const body = requestBody(out) as { text: string };
    expect(body.text.endsWith(`\n${ISSUE_URL}`)).toBe(true);
    expect(body.text.match(/[a-z]+:\/\//gi)).toHaveLength(1);
    expect(hostileLeaks(body)).toEqual([]);
  });

  it('webhook: JSON carries the text as data, the link as Sentry sent it', async () => {
    const out = await render('webhook', ['urls=https://hooks.example.test/sentry']);
    const body = requestBody(out) as { data: { title: string; url: string } };
    expect(body.data.title).toBe(hostileNotification('event_alert.triggered').title);
    expect(body.data.url).toBe(ISSUE_URL);
  });
});
