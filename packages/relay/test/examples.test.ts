import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { loadSample, parseSentryWebhook } from '@plugboard/sdk';
import { loadConfig } from '../src/config/load';
import { renderNotificationLine } from '../src/builtin/log-notifier';
import { evaluateRoutes, shadowedRoutes } from '../src/routing';

// examples/relay-docker as its README uses it, step 3 included: the webhook
// route uncommented, the webhook settings from .env through compose.

const EXAMPLE = resolve(__dirname, '..', '..', '..', 'examples', 'relay-docker');
const read = (file: string): string => readFileSync(join(EXAMPLE, file), 'utf8');

/** plugboard.yaml with its commented-out routes turned on. */
function uncommented(): string {
  return read('plugboard.yaml').replace(/^ {2}# ( *(?:- )?[A-Za-z]+:.*)$/gm, '  $1');
}

describe('examples/relay-docker', () => {
  it('delivers to the webhook route once it is uncommented (no route is shadowed)', () => {
    const text = uncommented();
    expect(text).toMatch(/^ {2}- name: production$/m);
    const dir = mkdtempSync(join(tmpdir(), 'pb-example-'));
    try {
      writeFileSync(join(dir, 'plugboard.yaml'), text);
      const { config } = loadConfig({
        file: join(dir, 'plugboard.yaml'),
        cwd: dir,
        env: {
          PLUGBOARD_SENTRY_CLIENT_SECRET: 'compose-secret-0123456789',
          WEBHOOK_URL: 'https://hooks.example.com/sentry',
          WEBHOOK_SECRET: 'whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=',
        },
      });
      expect(config.routes.map((r) => r.name)).toEqual(['everything', 'production']);
      expect(shadowedRoutes(config.routes)).toEqual([]);
      const sample = loadSample('issue.created');
      const parsed = parseSentryWebhook({ resource: sample.resource, body: sample.body });
      if (!parsed.ok) throw new Error(parsed.detail);
      const taken = evaluateRoutes(config.routes, parsed.notification)
        .filter((e) => e.matched)
        .map((e) => e.route.name);
      expect(taken).toEqual(['everything', 'production']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('compose: no ${VAR:-} with an empty default, and no endless restarts on exit 78', () => {
    const text = read('compose.yaml');
    // podman-compose 1.0 passes ${VAR:-} on as literal text.
    const code = text.replace(/#.*$/gm, '');
    expect(code).not.toMatch(/\$\{[A-Za-z_][A-Za-z0-9_]*:?-\}/);
    const relay = (parse(text) as { services: { relay: Record<string, unknown> } }).services.relay;
    expect(relay.restart).toMatch(/^on-failure:\d+$/);
    const env = relay.environment as Record<string, string>;
    expect(env.WEBHOOK_URL).toBe('${WEBHOOK_URL}');
    expect(read('.env.example')).toMatch(/^WEBHOOK_URL=$/m);
  });

  it('README: shows the log line the log notifier really prints', () => {
    const sample = loadSample('issue.created');
    const parsed = parseSentryWebhook({ resource: sample.resource, body: sample.body });
    if (!parsed.ok) throw new Error(parsed.detail);
    // The log notifier logs {notification: "<prefix> <line>"} with the message "notification".
    const shown = /^# (\{.*"msg":"notification"\})$/m.exec(read('README.md'))?.[1];
    expect(shown).toBeDefined();
    expect(shown).toContain(
      `"notification":${JSON.stringify(`ALERT ${renderNotificationLine(parsed.notification)}`)}`,
    );
    expect(shown).toContain('"instance":"everything/log"');
  });

  it('README: after editing .env, `up -d` (restart keeps the old environment)', () => {
    const readme = read('README.md');
    expect(readme).not.toMatch(/`docker compose restart relay`\.?$/m);
    expect(readme).toMatch(/Then `docker compose up -d`/);
  });
});
