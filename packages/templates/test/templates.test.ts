import { SAMPLE_KINDS } from '@plugboard/sdk';
import { buildNotification } from '@plugboard/sdk/testing';
import {
  checkTemplate,
  cutEscaped,
  DEFAULT_TEMPLATES,
  defaultTemplate,
  escapeHtml,
  escapeMarkdown,
  fitToBytes,
  plainTitle,
  renderDefault,
  renderFitted,
  renderTemplate,
  safeUrl,
  TemplateError,
} from '@plugboard/templates';

describe('escaping', () => {
  it('neutralises markdown links, emphasis, code and html', () => {
    const out = escapeMarkdown('[x](javascript:alert(1)) *b* _i_ `c` <at user_id="all"></at>');
    expect(out).toBe(
      '\\[x\\](javascript:alert(1)) \\*b\\* \\_i\\_ \\`c\\` &lt;at user\\_id="all"&gt;&lt;/at&gt;',
    );
    expect(out).not.toMatch(/(^|[^\\])\[x/);
  });

  it('escapes block syntax only at the start of a line', () => {
    expect(escapeMarkdown('# h\n- item\n1. one\nfront-end v1.2')).toBe(
      '\\# h\n\\- item\n1\\. one\nfront-end v1.2',
    );
  });

  it('encodes html entities', () => {
    expect(escapeHtml(`<script>alert("x")</script> & 'y'`)).toBe(
      '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;',
    );
  });

  it('lets only http(s) links through and keeps them inside (…)', () => {
    expect(safeUrl('javascript:alert(1)')).toBeUndefined();
    expect(safeUrl('data:text/html,x')).toBeUndefined();
    expect(safeUrl('https://s.io/a?b=(c) d')).toBe('https://s.io/a?b=%28c%29%20d');
  });

  it('never cuts an escape in half', () => {
    expect(cutEscaped('ab\\*cd', 3)).toBe('ab');
    expect(cutEscaped('ab&amp;cd', 5)).toBe('ab');
    expect(cutEscaped('ab\\\\cd', 4)).toBe('ab\\\\');
  });

  it('escapes what comes from Sentry in templates, not the template text', () => {
    const n = buildNotification('issue.created', {
      title: 'Boom [click](javascript:alert(1)) **bold** `x`',
      url: 'javascript:alert(1)',
    });
    const md = renderTemplate('**{{title}}** [link]({{url}})', n, { escape: 'markdown' });
    expect(md).toBe('**Boom \\[click\\](javascript:alert(1)) \\*\\*bold\\*\\* \\`x\\`** [link]()');
    const html = renderTemplate(
      '<b>{{title}}</b>',
      buildNotification('issue.created', { title: '<i>&</i>' }),
      {
        escape: 'html',
      },
    );
    expect(html).toBe('<b>&lt;i&gt;&amp;&lt;/i&gt;</b>');
    // Plain text is not escaped, but no `[label](target)` of the event's survives.
    const none = renderTemplate('{{title}}', n, { escape: 'none' });
    expect(none).toBe('Boom [click] (javascript:alert(1)) **bold** `x`');
  });
});

describe('helpers', () => {
  const n = buildNotification('issue.created', { title: 'a'.repeat(300), environment: undefined });
  it('truncate and default', () => {
    const out = renderTemplate(
      '{{truncate title 10}}|{{default environment "-"}}|{{upper level}}',
      n,
    );
    expect(out).toBe(`${'a'.repeat(9)}…|-|ERROR`);
  });
  it('reports template errors', () => {
    expect(() => renderTemplate('{{#if x}}', n)).toThrow(TemplateError);
    expect(checkTemplate('{{#if}}')).toMatch(/does not parse/);
    expect(checkTemplate('{{nope title}}')).toMatch(/does not render/);
    expect(checkTemplate('{{title}} {{truncate message 5}}')).toBeUndefined();
  });
});

describe('default templates', () => {
  it.each([...SAMPLE_KINDS])('%s renders project, title, level and link', (kind) => {
    const n = buildNotification(kind);
    for (const escape of ['markdown', 'html', 'none'] as const) {
      const text = renderDefault(n, { escape });
      expect(text.length).toBeGreaterThan(0);
      const title = renderTemplate('{{title}}', n, { escape });
      expect(text).toContain(title);
      if (n.project) expect(text).toContain(renderTemplate('{{project.name}}', n, { escape }));
      if (n.url) expect(text).toContain(renderTemplate('{{url}}', n, { escape }));
      if (n.group?.shortId) expect(text).toContain(renderTemplate('{{shortId}}', n, { escape }));
    }
    if (n.level) expect(renderDefault(n)).toContain(`Level: ${n.level}`);
  });

  it('has a template for every resource the brief names', () => {
    for (const kind of [
      'issue.created',
      'issue.unresolved',
      'issue.resolved',
      'event_alert.triggered',
      'error.created',
      'metric_alert.critical',
      'metric_alert.warning',
      'metric_alert.resolved',
      'comment.created',
      'legacy_webhook.triggered',
    ]) {
      expect(DEFAULT_TEMPLATES[kind]).toBeDefined();
    }
    expect(defaultTemplate('comment.updated')).toBe(DEFAULT_TEMPLATES['comment.created']);
    expect(defaultTemplate('something.new')).toContain('{{title}}');
  });

  it('renders a regression with its own wording', () => {
    const n = buildNotification('issue.resolved', {
      kind: 'issue.unresolved',
      action: 'unresolved',
    });
    expect(renderDefault(n)).toMatch(/^### Regression: /);
    expect(renderDefault(n)).toContain('came back');
  });

  it('says first how many notifications a digest stands for', () => {
    const n = buildNotification('issue.created');
    n.digest = {
      reason: 'update',
      count: 1204,
      total: 3000,
      since: '2026-11-25T10:00:00.000Z',
      until: '2026-11-25T10:05:00.000Z',
      lastSeen: '2026-11-25T10:04:59.000Z',
    };
    const text = renderDefault(n);
    expect(text.split('\n').slice(0, 3).join('\n')).toMatch(
      /^### New issue: .+\n\n\*\*FRONT-END-9: 1,204 new events in the last 5 minutes, last seen 2026-11-25T10:04:59\.000Z\*\*$/,
    );
    expect(renderDefault(buildNotification('issue.created'))).not.toContain('new events');
  });

  it('lists the notifications a folded backlog stands for, escaped', () => {
    const n = buildNotification('metric_alert.critical');
    n.digest = {
      reason: 'folded',
      count: 2,
      total: 2,
      since: '2026-11-25T10:00:00.000Z',
      until: '2026-11-25T10:01:00.000Z',
      lastSeen: '2026-11-25T10:00:30.000Z',
      items: [
        { kind: 'error.created', title: 'Boom *bold*', project: 'web', url: 'https://s.example/1' },
        { kind: 'error.created', title: 'Other', url: 'javascript:alert(1)' },
      ],
    };
    const text = renderDefault(n);
    expect(text).toContain(
      "**2 notifications held back by the target's rate limit in the last 60 seconds**",
    );
    expect(text).toContain('- [Boom \\*bold\\*](https://s.example/1) (web)');
    expect(text).toContain('- Other\n');
  });

  it('gives a plain one-line title', () => {
    const n = buildNotification('issue.created', { title: 'x\n'.repeat(100) });
    const t = plainTitle(n, 30);
    expect(Array.from(t)).toHaveLength(30);
    expect(t).not.toContain('\n');
  });
});

describe('fitting under a byte limit', () => {
  it('drops stack and tags before the message, keeps title, project and link', () => {
    const n = buildNotification('event_alert.triggered', { message: 'm'.repeat(5000) });
    const full = renderDefault(n);
    const r = renderFitted(undefined, n, { maxBytes: 1500 });
    expect(Buffer.byteLength(full)).toBeGreaterThan(1500);
    expect(r.truncated).toBe(true);
    expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(1500);
    expect(r.text).not.toContain('**Stack**');
    expect(r.text).toContain('heck is not defined');
    expect(r.text).toContain('front-end');
    expect(r.text).toContain(n.url);
    expect(r.text).toMatch(/truncated/);
  });

  it('leaves a message that fits alone', () => {
    const n = buildNotification('issue.created');
    expect(renderFitted(undefined, n, { maxBytes: 20_000 })).toEqual({
      text: renderDefault(n),
      truncated: false,
    });
  });

  it('measures with the caller’s measure (the serialised body)', () => {
    const n = buildNotification('issue.created', { title: '"'.repeat(3000) });
    const measure = (text: string): number => Buffer.byteLength(JSON.stringify({ text }));
    const r = renderFitted(undefined, n, { maxBytes: 1000, measure, escape: 'none' });
    expect(measure(r.text)).toBeLessThanOrEqual(1000);
    expect(r.text).toContain('truncated');
  });

  it('cuts even a template that is too big on its own', () => {
    const n = buildNotification('issue.created');
    const r = renderFitted('x'.repeat(5000), n, { maxBytes: 300 });
    expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(300);
    expect(r.text).toMatch(/truncated/);
  });

  it('fitToBytes shortens the least important part first and says so', () => {
    const parts = [
      { text: 'Title', priority: 10 },
      { text: 'message '.repeat(50), priority: 5 },
      { text: 'stack '.repeat(100), priority: 1 },
      { text: 'https://sentry.io/x', priority: 10, keep: true },
    ];
    const r = fitToBytes(parts, 600, { note: '(truncated)' });
    expect(r.truncated).toBe(true);
    expect(r.bytes).toBeLessThanOrEqual(600);
    expect(r.text).toContain('message '.repeat(50).trim());
    expect(r.text.startsWith('Title')).toBe(true);
    expect(r.text).toContain('https://sentry.io/x');
    expect(r.text.endsWith('(truncated)')).toBe(true);
    const tight = fitToBytes(parts, 80, { note: '(truncated)' });
    expect(tight.bytes).toBeLessThanOrEqual(80);
    expect(tight.text).not.toContain('stack');
    expect(tight.text).toContain('https://sentry.io/x');
    expect(fitToBytes(parts, 10_000)).toMatchObject({ truncated: false });
  });

  it('counts bytes, not characters', () => {
    const r = fitToBytes([{ text: '错'.repeat(1000), priority: 1 }], 100, { note: '…' });
    expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(100);
  });
});
