import { hostileLeaks, hostileNotification } from '@plugboard/sdk/testing';
import {
  defang,
  escapeFor,
  escapePlain,
  plainTitle,
  renderDefault,
  renderFitted,
} from '@plugboard/templates';

// Event text is data in every escape mode: it never becomes a link, a
// mention, a tag or a control sequence, and a long value never pushes the
// template's own link out of a fitted message.

const event = hostileNotification('event_alert.triggered');
const huge = hostileNotification('event_alert.triggered', { length: 30_000 });

describe('defang', () => {
  it('keeps text readable but takes away what makes links, mentions and controls', () => {
    expect(defang('see https://evil.example/x and www.evil.example')).toBe(
      'see https[:]//evil.example/x and www[.]evil.example',
    );
    expect(defang('@all ping @13800000000, mail ann@example.com')).toBe(
      '＠all ping ＠13800000000, mail ann@example.com',
    );
    expect(defang('a\r\nb\rc\u2028d\u001b[31me\u0000\u202e')).toBe('a\nb\nc\nd[31me');
    expect(escapePlain('<at id=all></at> a < b')).toBe('＜at id=all>＜/at> a < b');
  });

  it('applies in every escape mode', () => {
    for (const mode of ['markdown', 'html', 'none'] as const) {
      expect(hostileLeaks(escapeFor(mode, event.title))).toEqual([]);
    }
  });
});

describe.each(['markdown', 'html', 'none'] as const)('the default template, %s', (mode) => {
  it('renders hostile text with no link but the issue link', () => {
    const text = renderDefault(event, { escape: mode });
    expect(hostileLeaks(text)).toEqual([]);
    const links =
      mode === 'html'
        ? [...text.matchAll(/<a\b[^>]*>/g)]
        : [...text.matchAll(/(?<!\\)\]\(([^)]*)\)/g)].map((m) => m[1]);
    expect(links).toEqual(mode === 'html' ? [] : [event.url]);
  });
});

it('plainTitle is one inert line', () => {
  const title = plainTitle(event, 10_000);
  expect(title).not.toMatch(/\n/);
  expect(hostileLeaks(title)).toEqual([]);
});

it('a fitted message keeps the link when every value is 30,000 characters', () => {
  for (const escape of ['markdown', 'none'] as const) {
    const fitted = renderFitted(undefined, huge, { escape, maxBytes: 4_000 });
    expect(fitted.truncated).toBe(true);
    expect(Buffer.byteLength(fitted.text)).toBeLessThanOrEqual(4_000);
    expect(fitted.text).toContain(`[View in Sentry](${huge.url})`);
  }
});
