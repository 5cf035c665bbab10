import { validatePluginConfig } from '@plugboard/sdk';
import { WebhookNotifier } from '@plugboard/notifier-webhook';
import { buildNotification, createTestContext, runNotifier } from '@plugboard/sdk/testing';

// Config problems are found before any request is made: no server needed.

const plugin = new WebhookNotifier();
const notification = buildNotification('issue.created');

async function configError(config: Record<string, unknown>): Promise<Error & { code?: string }> {
  try {
    await runNotifier(new WebhookNotifier(), notification, { config });
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected the config to be rejected');
}

describe('config fields', () => {
  it('applies the documented defaults', () => {
    const { config, problems } = validatePluginConfig(plugin.configFields(), {
      urls: 'https://hooks.example.com/a',
    });
    expect(problems).toEqual([]);
    expect(config).toEqual({
      urls: 'https://hooks.example.com/a',
      format: 'plugboard',
      timeoutMs: 5000,
    });
    expect(plugin.validateConfig(config as never)).toEqual([]);
  });

  it('accepts blank lines, surrounding spaces and several URLs', () => {
    expect(
      plugin.validateConfig({
        urls: '\n  https://a.example.com/x \r\nhttp://b.example.com:8080/y?token=1\n\n',
        format: 'sentry-legacy',
        timeoutMs: 1000,
        headers: 'X-A: 1\n  X-B:2  ',
        secret: 'whsec_MDEyMzQ1Njc4OWFiY2RlZg==',
      }),
    ).toEqual([]);
  });

  it('reports a bad URL line by number, without its query or userinfo', async () => {
    const err = await configError({
      urls: 'https://ok.example.com/a\nhttps//typo.example.com/b?token=tok-123',
    });
    expect(err.code).toBe('PB_CONFIG_INVALID');
    expect(err.message).toMatch(
      /urls: line 2 \("https\/\/typo\.example\.com\/b"\) is not an absolute URL/,
    );
    expect(err.message).not.toContain('tok-123');

    const ftp = await configError({ urls: 'ftp://user:pw@files.example.com/in' });
    expect(ftp.message).toMatch(
      /urls: line 1 \("ftp:\/\/files\.example\.com\/in"\) must be http or https/,
    );
    expect(ftp.message).not.toContain('pw');
  });

  it('reports repeated and missing URLs', async () => {
    expect(
      (await configError({ urls: 'https://a.example.com\nhttps://a.example.com' })).message,
    ).toMatch(/urls: line 2 repeats line 1/);
    expect((await configError({})).message).toMatch(/urls: is required/);
    expect((await configError({ urls: '  \n ' })).message).toMatch(/urls: enter at least one URL/);
  });

  it('names the format field for an unknown format', async () => {
    const err = await configError({ urls: 'https://a.example.com', format: 'xml' });
    expect(err.code).toBe('PB_CONFIG_INVALID');
    expect(err.message).toMatch(/format: must be one of plugboard, sentry-legacy/);
  });

  it('names the timeoutMs field for a bad timeout', async () => {
    expect(
      (await configError({ urls: 'https://a.example.com', timeoutMs: 'soon' })).message,
    ).toMatch(/timeoutMs: must be a number/);
    expect((await configError({ urls: 'https://a.example.com', timeoutMs: 0 })).message).toMatch(
      /timeoutMs: must be a positive number/,
    );
  });

  it('reports bad header lines without their values', async () => {
    const err = await configError({
      urls: 'https://a.example.com',
      headers: 'Authorization Bearer tok-456\nwebhook-signature: v1,forged\nX-Ok: fine',
    });
    expect(err.message).toMatch(/headers: line 1 must be "Name: value"/);
    expect(err.message).toMatch(/headers: line 2: webhook-signature is set by the notifier/);
    expect(err.message).not.toMatch(/line 3/);
    expect(err.message).not.toContain('tok-456');
    expect(err.message).not.toContain('forged');
  });

  it('rejects a whsec_ secret that is not base64, without showing it', async () => {
    const secret = 'whsec_not*base64!';
    const err = await configError({ urls: 'https://a.example.com', secret });
    expect(err.message).toMatch(/secret: the part after "whsec_" must be base64 \(value hidden\)/);
    expect(err.message).not.toContain('not*base64');
  });

  it('an unconfigured instance is skipped, not failed', async () => {
    const ctxConfig = { urls: '', format: 'plugboard', timeoutMs: 5000 } as const;
    expect(await plugin.shouldNotify(notification, createTestContext({ ...ctxConfig }))).toBe(
      false,
    );
  });
});
