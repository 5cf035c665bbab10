#!/usr/bin/env node
import { Command, Option } from 'commander';
import {
  describeErrorChain,
  loadSample,
  SAMPLE_KINDS,
  compactSentryJson,
  signSentryBody,
} from '@plugboard/sdk';
import { loadConfig, type LoadedConfig } from './config/load';
import { createRegistry, openStore, redactUrl, resolveInstances, Relay } from './relay';
import { RELAY_VERSION } from './version';

/** Print a start-up or command failure: code and first error first, causes below. */
function fail(err: unknown): never {
  const code = (err as { code?: unknown }).code;
  process.stderr.write(
    `plugboard: ${typeof code === 'string' ? `[${code}] ` : ''}${describeErrorChain(err).replace(/^\[[A-Z_]+\] /, '')}\n`,
  );
  process.exit(typeof code === 'string' && code.startsWith('PB_CONFIG') ? 78 : 1);
}

function load(opts: { config?: string }, lenientReferences = false): LoadedConfig {
  return loadConfig({ ...(opts.config ? { file: opts.config } : {}), lenientReferences });
}

const program = new Command();
program
  .name('plugboard')
  .description('Plugboard relay: takes Sentry webhooks durably and hands them to notifier plugins.')
  .version(RELAY_VERSION);

const configOption = new Option(
  '-c, --config <file>',
  'YAML config file (default: $PLUGBOARD_CONFIG, else ./plugboard.yaml if present)',
);

program
  .command('serve')
  .description('Run the relay.')
  .addOption(configOption)
  .action(async (opts: { config?: string }) => {
    let relay: Relay;
    try {
      relay = await Relay.start({ loaded: load(opts) });
    } catch (err) {
      fail(err);
    }
    let signals = 0;
    const stop = (signal: string): void => {
      signals++;
      if (signals > 1) {
        relay.logger.warn({ signal }, 'second signal: exiting now');
        process.exit(130);
      }
      relay.logger.info({ signal }, 'shutting down');
      relay.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

program
  .command('plugins')
  .description('List every discovered plugin: package, version, group, status and error.')
  .addOption(configOption)
  .option('--json', 'print JSON')
  .action(async (opts: { config?: string; json?: boolean }) => {
    try {
      // Listing plugins needs no secrets: unset references do not stop it.
      const loaded = load(opts, true);
      const registry = createRegistry(
        {
          ...loaded,
          config: { ...loaded.config, plugins: { ...loaded.config.plugins, strict: false } },
        },
        process.cwd(),
      );
      registry.discover();
      const list = await registry.loadAll();
      // Failed plugins make the exit code 1 in both formats, so scripts
      // reading --json learn about them without parsing the list.
      if (list.some((d) => d.status === 'failed')) process.exitCode = 1;
      if (opts.json) {
        process.stdout.write(JSON.stringify(list, null, 2) + '\n');
        return;
      }
      const rows = list.map((d) => [
        d.name,
        d.group,
        `${d.packageName}@${d.packageVersion}`,
        d.status,
        // The chain starts with `[CODE] `; the code is already shown first.
        d.error
          ? `${d.error.code}: ${d.error.chain
              .replace(/^\[[A-Z_]+\] /, '')
              .split('\n')
              .join(' | ')}`
          : '',
      ]);
      const header = ['NAME', 'GROUP', 'PACKAGE', 'STATUS', 'ERROR'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      for (const r of [header, ...rows]) {
        process.stdout.write(
          r
            .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
            .join('  ')
            .trimEnd() + '\n',
        );
      }
    } catch (err) {
      fail(err);
    }
  });

program
  .command('check-config')
  .description('Validate the configuration and every route instance against its plugin.')
  .addOption(configOption)
  .action(async (opts: { config?: string }) => {
    try {
      const loaded = load(opts);
      const registry = createRegistry(loaded, process.cwd());
      registry.discover();
      const resolved = await resolveInstances(loaded, registry);
      for (const b of resolved.broken) {
        process.stderr.write(
          `plugboard: ${b.instanceId}: plugin ${b.plugin} failed to load: ${b.error}\n`,
        );
      }
      const where = loaded.file ? ` (${loaded.file})` : '';
      const summary =
        `listen ${loaded.listen.host}:${loaded.listen.port}, ${loaded.config.routes.length} route(s), ` +
        `${resolved.instances.length + resolved.broken.length} instance(s)`;
      if (resolved.broken.length > 0) {
        // Not "config OK": those instances' deliveries would wait in the queue.
        process.stdout.write(
          `config NOT OK${where}: ${summary}; ${resolved.broken.length} cannot deliver until its plugin loads\n`,
        );
        process.exitCode = 1;
      } else {
        process.stdout.write(`config OK${where}: ${summary}\n`);
      }
    } catch (err) {
      fail(err);
    }
  });

program
  .command('jira')
  .description(
    'JIRA helpers from @plugboard/notifier-jira, e.g. `plugboard jira fields --url <JIRA> --project KEY --issue-type Bug` (token in JIRA_TOKEN).',
  )
  .helpOption(false)
  .allowUnknownOption()
  .argument('[args...]')
  .action(async (args: string[]) => {
    let jira: { jiraCli: (argv: string[]) => Promise<number> };
    try {
      jira = require('@plugboard/notifier-jira') as typeof jira;
    } catch (err) {
      fail(new Error(`@plugboard/notifier-jira is not installed: ${(err as Error).message}`));
    }
    process.exitCode = await jira.jiraCli(args);
  });

program
  .command('migrate')
  .description(
    'Create or upgrade the store (SQLite file, or PostgreSQL schema with databaseUrl) and exit.',
  )
  .addOption(configOption)
  .action(async (opts: { config?: string }) => {
    try {
      const loaded = load(opts);
      const store = await openStore(loaded);
      await store.close();
      process.stdout.write(
        `store up to date: ${
          loaded.config.databaseUrl
            ? `postgres ${redactUrl(loaded.config.databaseUrl)} schema ${loaded.config.store.postgres.schema}`
            : `sqlite ${loaded.config.dataDir}`
        }\n`,
      );
    } catch (err) {
      fail(err);
    }
  });

program
  .command('send-test')
  .description(
    `Post a correctly signed sample webhook to a running relay. Kinds: ${SAMPLE_KINDS.join(', ')}`,
  )
  .argument('<kind>', 'resource.action, e.g. issue.created')
  .addOption(configOption)
  .option('--url <url>', 'relay base URL (default: the configured listen address)')
  .action(async (kind: string, opts: { config?: string; url?: string }) => {
    try {
      const loaded = load(opts);
      const sample = loadSample(kind);
      const host = ['0.0.0.0', '::'].includes(loaded.listen.host)
        ? '127.0.0.1'
        : loaded.listen.host;
      const base = (
        opts.url ?? `http://${host.includes(':') ? `[${host}]` : host}:${loaded.listen.port}`
      ).replace(/\/+$/, '');
      // Sentry sends compact, ASCII-escaped JSON and signs those bytes.
      const body = compactSentryJson(sample.body);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      let url: string;
      if (sample.resource === 'legacy_webhook') {
        const token = loaded.config.legacy.token;
        if (!token) throw new Error('legacy.token (PLUGBOARD_LEGACY_TOKEN) is not set');
        headers.authorization = `Bearer ${token}`;
        url = `${base}/hooks/sentry/legacy`;
      } else {
        const secret = loaded.config.sentry.clientSecret;
        const first = Array.isArray(secret) ? secret[0] : secret;
        if (!first)
          throw new Error('sentry.clientSecret (PLUGBOARD_SENTRY_CLIENT_SECRET) is not set');
        headers['sentry-hook-resource'] = sample.resource;
        headers['sentry-hook-timestamp'] = String(Math.floor(Date.now() / 1000));
        headers['request-id'] = require('node:crypto').randomBytes(16).toString('hex') as string;
        headers['sentry-hook-signature'] = signSentryBody(body, first);
        url = `${base}/hooks/sentry`;
      }
      // Sentry gives up after 1 s; 10 s is generous and still ends a hang.
      const res = await fetch(url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      process.stdout.write(`${res.status} ${text}\n`);
      if (res.status >= 300) process.exitCode = 1;
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') {
        fail(new Error('the relay accepted the connection but did not answer within 10 s'));
      }
      const cause = (err as { cause?: { code?: string } }).cause;
      if (
        cause?.code &&
        ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH'].includes(cause.code)
      ) {
        fail(
          new Error(
            `cannot reach the relay (${cause.code}); is \`plugboard serve\` running? Use --url to point elsewhere.`,
          ),
        );
      }
      fail(err);
    }
  });

program.parseAsync(process.argv).catch(fail);
