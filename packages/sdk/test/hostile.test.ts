import { SAMPLE_KINDS } from '@plugboard/sdk';
import {
  FORGED_LOG_LINE,
  HOSTILE_HOST,
  HOSTILE_TEXT,
  hostileLeaks,
  hostileNotification,
  hostileText,
  hostileWebhook,
} from '@plugboard/sdk/testing';

describe('hostile-text fixture', () => {
  it('carries links, mentions, markup, controls and a forged log line', () => {
    for (const piece of [
      '[View in Sentry](https://evil.example/login)',
      '<https://evil.example/autolink>',
      'https://evil.example/bare',
      '<a href=',
      '<script>',
      'onerror=',
      '<at id=all></at>',
      '<at user_id=',
      '@all',
      '@everyone',
      '@13800000000',
      '[x|https://evil.example/wiki]',
      '{color',
      '[~accountid:',
      '\u001b[31m',
      '\u0000',
      '\r\n',
      `\n${FORGED_LOG_LINE}\n`,
    ]) {
      expect(HOSTILE_TEXT).toContain(piece);
    }
    expect(HOSTILE_HOST).toBe('evil.example');
  });

  it('repeats to an exact length in code points', () => {
    expect(Array.from(hostileText(30_000))).toHaveLength(30_000);
    expect(hostileText(30_000).startsWith(HOSTILE_TEXT)).toBe(true);
  });

  it('puts the text in every event field, leaving Sentry-made links and ids alone', () => {
    const n = hostileNotification();
    expect(n.title).toBe(HOSTILE_TEXT);
    expect(n.event?.culprit).toBe(HOSTILE_TEXT);
    expect(n.environment).toBe(HOSTILE_TEXT);
    expect(n.release).toBe(HOSTILE_TEXT);
    expect(n.triggeringRules).toEqual([HOSTILE_TEXT]);
    expect(Object.values(n.tags).every((v) => v === HOSTILE_TEXT)).toBe(true);
    expect(Object.keys(n.tags).some((k) => k.includes('<at id=all>'))).toBe(true);
    expect(n.url).toMatch(/^https:\/\/[^/]*sentry\.io\//);
    expect(n.url).not.toContain(HOSTILE_HOST);

    const issue = hostileNotification('issue.created', { length: 30_000 });
    expect(Array.from(issue.title)).toHaveLength(30_000);
    expect(issue.group?.culprit).toBe(hostileText(30_000));
    expect(issue.group?.shortId).toBe('FRONT-END-9');
  });

  it('builds a notification from every sample kind', () => {
    for (const kind of SAMPLE_KINDS) {
      expect(() => hostileNotification(kind)).not.toThrow();
      expect(JSON.stringify(hostileWebhook(kind).body)).not.toContain('"title":"probe"');
    }
    expect(hostileNotification('comment.created').comment?.text).toBe(HOSTILE_TEXT);
    expect(hostileNotification('metric_alert.critical').metricAlert?.description).toBe(
      HOSTILE_TEXT,
    );
  });

  it('finds what survived, by path, and nothing in inert text', () => {
    const leaks = hostileLeaks({ a: [HOSTILE_TEXT], b: 'mail ann@example.com, see https[:]//x' });
    expect(leaks.every((l) => l.startsWith('.a[0]: '))).toBe(true);
    expect(leaks.map((l) => l.split(': ')[1])).toEqual([
      'a URL of evil.example',
      'a raw tag',
      'a mention',
      'a control character',
    ]);
    expect(hostileLeaks('https[:]//evil.example ＜at id=all> ＠all &lt;script&gt;')).toEqual([]);
  });
});
