#!/usr/bin/env node
import { resolveSsoProviders } from './auth/providers';
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
import { formatRoutesReport, readPayloadFile, routesTest } from './noise/routes-test';
import type { SilenceView } from './noise/silences';
import { RELAY_VERSION } from './version';

/** Print a start-up or command failure: code and first error first, causes below. */
function fail(err: unknown, exitCode?: number): never {
  const code = (err as { code?: unknown }).code;
  process.stderr.write(
    `plugboard: ${typeof code === 'string' ? `[${code}] ` : ''}${describeErrorChain(err).replace(/^\[[A-Z_]+\] /, '')}\n`,
  );
  process.exit(exitCode ?? (typeof code === 'string' && code.startsWith('PB_CONFIG') ? 78 : 1));
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
      // Sign-in providers are checked as start-up checks them (config, dummy gate).
      const sso = await resolveSsoProviders(loaded, registry);
      for (const b of resolved.broken) {
        process.stderr.write(
          `plugboard: ${b.instanceId}: plugin ${b.plugin} failed to load: ${b.error}\n`,
        );
      }
      const where = loaded.file ? ` (${loaded.file})` : '';
      const summary =
        `listen ${loaded.listen.host}:${loaded.listen.port}, ${loaded.config.routes.length} route(s), ` +
        `${resolved.instances.length + resolved.broken.length} instance(s)` +
        (sso.length > 0 ? `, ${sso.length} sign-in provider(s)` : '');
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

/** Base URL of the configured relay, for commands that talk to a running one. */
function relayUrl(loaded: LoadedConfig, url?: string): string {
  const host = ['0.0.0.0', '::'].includes(loaded.listen.host) ? '127.0.0.1' : loaded.listen.host;
  return (url ?? `http://${host.includes(':') ? `[${host}]` : host}:${loaded.listen.port}`).replace(
    /\/+$/,
    '',
  );
}

/** Call the relay's JSON API with the configured api.token; print errors as the API words them. */
async function callApi(
  opts: { config?: string; url?: string },
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<unknown> {
  const loaded = load(opts);
  const token = loaded.config.api.token;
  if (!token) throw new Error('api.token (PLUGBOARD_API_TOKEN) is not set: the API needs it');
  const res = await fetch(`${relayUrl(loaded, opts.url)}/api${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  const json = (await res.json().catch(() => ({}))) as {
    error?: { code: string; message: string };
  };
  if (!res.ok) {
    throw Object.assign(new Error(json.error?.message ?? `HTTP ${res.status}`), {
      code: json.error?.code,
    });
  }
  return json;
}

const filterOptions = (cmd: Command): Command =>
  cmd
    .option('--state <state>', 'pending, running, succeeded, failed, dead or skipped')
    .option('--instance <id>', 'route/instance, e.g. alerts/webhook')
    .option('--project <slug>', 'Sentry project slug')
    .option('--code <code>', 'code of the last error, e.g. PB_DELIVERY_TIMEOUT')
    .option('--since <when>', 'ISO date, or a duration ago: 30m, 2h, 7d')
    .option('--until <when>', 'ISO date, or a duration ago');

type FilterOpts = {
  state?: string;
  instance?: string;
  project?: string;
  code?: string;
  since?: string;
  until?: string;
};

function filterQuery(o: FilterOpts & { limit?: string }): Record<string, string> {
  const q: Record<string, string> = {};
  for (const k of ['state', 'instance', 'project', 'code', 'since', 'until', 'limit'] as const) {
    const v = o[k];
    if (v !== undefined) q[k] = v;
  }
  return q;
}

const deliveries = program
  .command('deliveries')
  .description('The delivery log of a running relay (through its JSON API, with api.token).');

filterOptions(
  deliveries
    .command('list')
    .description('List deliveries, newest first.')
    .addOption(configOption)
    .option('--url <url>', 'relay base URL (default: the configured listen address)')
    .option('--limit <n>', 'at most this many (1 to 1000, default 100)')
    .option('--json', 'print JSON'),
).action(
  async (opts: FilterOpts & { config?: string; url?: string; limit?: string; json?: boolean }) => {
    try {
      const q = new URLSearchParams(filterQuery(opts)).toString();
      const out = (await callApi(opts, 'GET', `/deliveries${q ? `?${q}` : ''}`)) as {
        deliveries: Array<
          Record<string, unknown> & { lastError?: { code: string; message: string } }
        >;
      };
      if (opts.json) {
        process.stdout.write(JSON.stringify(out.deliveries, null, 2) + '\n');
        return;
      }
      for (const d of out.deliveries) {
        process.stdout.write(
          [
            d.id,
            d.state,
            d.instanceId,
            d.project ?? '-',
            `attempts ${String(d.attempts)}/${String(d.maxAttempts)}`,
            new Date(d.createdAt as number).toISOString(),
            d.lastError ? `${d.lastError.code}: ${d.lastError.message}` : '',
          ]
            .join('  ')
            .trimEnd() + '\n',
        );
      }
      if (out.deliveries.length === 0) process.stdout.write('no deliveries match\n');
    } catch (err) {
      fail(err);
    }
  },
);

deliveries
  .command('show')
  .description('One delivery with its webhook and every attempt.')
  .argument('<id>')
  .addOption(configOption)
  .option('--url <url>', 'relay base URL (default: the configured listen address)')
  .action(async (id: string, opts: { config?: string; url?: string }) => {
    try {
      const out = await callApi(opts, 'GET', `/deliveries/${encodeURIComponent(id)}`);
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    } catch (err) {
      fail(err);
    }
  });

filterOptions(
  deliveries
    .command('replay')
    .description(
      'Deliver again, as a new chain of attempts under the same idempotency key: the given ids, or every dead delivery matching the filter.',
    )
    .argument('[ids...]')
    .addOption(configOption)
    .option('--url <url>', 'relay base URL (default: the configured listen address)'),
).action(async (ids: string[], opts: FilterOpts & { config?: string; url?: string }) => {
  try {
    const filter = filterQuery(opts);
    if (ids.length === 0 && Object.keys(filter).length === 0) {
      throw new Error(
        'name delivery ids, or a filter such as --instance or --since (replays dead ones)',
      );
    }
    const out = (await callApi(
      opts,
      'POST',
      '/deliveries/replay',
      ids.length > 0 ? { ids } : { filter },
    )) as { replayed: string[] };
    process.stdout.write(
      out.replayed.length === 0
        ? 'nothing to replay (pending or running deliveries are already on their way)\n'
        : `replayed ${out.replayed.length}: ${out.replayed.join(', ')}\n`,
    );
  } catch (err) {
    fail(err);
  }
});

const instances = program
  .command('instances')
  .description(
    'Plugin instances of a running relay and whether they are paused (JSON API, api.token).',
  );

instances
  .command('list')
  .description('Every route instance, paused or delivering.')
  .addOption(configOption)
  .option('--url <url>', 'relay base URL (default: the configured listen address)')
  .action(async (opts: { config?: string; url?: string }) => {
    try {
      const out = (await callApi(opts, 'GET', '/instances')) as {
        instances: Array<{ id: string; paused: boolean; since?: number; reason?: string }>;
      };
      for (const i of out.instances) {
        process.stdout.write(
          i.paused
            ? `${i.id}  PAUSED since ${new Date(i.since ?? 0).toISOString()}: ${i.reason ?? ''}\n`
            : `${i.id}  delivering\n`,
        );
      }
    } catch (err) {
      fail(err);
    }
  });

program
  .command('groups')
  .description(
    'Open notification groups of grouped routes: counts, messages sent, next message (JSON API, api.token).',
  )
  .addOption(configOption)
  .option('--url <url>', 'relay base URL (default: the configured listen address)')
  .option('--route <name>', 'only this route')
  .option('--json', 'print the JSON answer')
  .action(async (opts: { config?: string; url?: string; route?: string; json?: boolean }) => {
    try {
      const query = opts.route ? `?route=${encodeURIComponent(opts.route)}` : '';
      const out = (await callApi(opts, 'GET', `/groups${query}`)) as {
        groups: Array<{
          route: string;
          key: string;
          status: string;
          pending: number;
          total: number;
          sent: number;
          suppressed: number;
          lastAt: string;
          nextFlushAt: string;
        }>;
      };
      if (opts.json) {
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        return;
      }
      if (out.groups.length === 0) process.stdout.write('no open groups\n');
      for (const g of out.groups) {
        process.stdout.write(
          `${g.route}  ${g.key}  ${g.status}  ${g.total} notification(s), ${g.pending} waiting, ` +
            `${g.sent} message(s) sent${g.suppressed ? `, ${g.suppressed} over the cap` : ''}; ` +
            `last ${g.lastAt}, next check ${g.nextFlushAt}\n`,
        );
      }
    } catch (err) {
      fail(err);
    }
  });

instances
  .command('resume')
  .description('Let a paused instance deliver again (on every replica).')
  .argument('<id>', 'route/instance')
  .addOption(configOption)
  .option('--url <url>', 'relay base URL (default: the configured listen address)')
  .action(async (id: string, opts: { config?: string; url?: string }) => {
    try {
      const out = (await callApi(opts, 'POST', `/instances/${encodeURIComponent(id)}/resume`)) as {
        resumed: boolean;
      };
      process.stdout.write(out.resumed ? `${id} resumed\n` : `${id} was not paused\n`);
    } catch (err) {
      fail(err);
    }
  });

const routes = program
  .command('routes')
  .description('How the configured routes treat a notification.');

routes
  .command('test')
  .description(
    'Show the labels of a Sentry payload file, which routes take it and why not, and whether a silence or mute interval would hold its deliveries now.',
  )
  .argument('<payload>', 'a webhook body as JSON (Integration Platform or legacy plugin)')
  .addOption(configOption)
  .option('--resource <resource>', 'Sentry-Hook-Resource of the payload (default: from its shape)')
  .option('--at <time>', 'evaluate silences and mute intervals at this ISO time instead of now')
  .option('--url <url>', 'relay to read silences from (default: the configured listen address)')
  .option('--json', 'print JSON')
  .action(
    async (
      file: string,
      opts: { config?: string; resource?: string; at?: string; url?: string; json?: boolean },
    ) => {
      // Config problems exit 78; a payload that cannot be read or parsed 65 (EX_DATAERR).
      let loaded: LoadedConfig;
      try {
        loaded = load(opts, true);
      } catch (err) {
        fail(err);
      }
      try {
        const body = readPayloadFile(file);
        const now = opts.at === undefined ? Date.now() : Date.parse(opts.at);
        if (Number.isNaN(now)) throw new Error(`--at: not an ISO time: ${opts.at}`);
        // Silences live in the running relay's store: asked through its API,
        // best effort, so the command also works without a relay.
        let silences: SilenceView[] | undefined;
        let silencesNote: string | undefined;
        if (!loaded.config.api.token) {
          silencesNote = 'api.token (PLUGBOARD_API_TOKEN) is not set, so the relay cannot be asked';
        } else {
          try {
            const out = (await callApi(opts, 'GET', '/silences')) as {
              silences: SilenceView[];
            };
            silences = out.silences;
          } catch (err) {
            silencesNote = `cannot read them from the relay: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`;
          }
        }
        const report = routesTest({
          file,
          body,
          ...(opts.resource ? { resource: opts.resource } : {}),
          config: loaded.config,
          now,
          ...(silences ? { silences } : {}),
          ...(silencesNote ? { silencesNote } : {}),
        });
        process.stdout.write(
          opts.json ? JSON.stringify(report, null, 2) + '\n' : formatRoutesReport(report),
        );
      } catch (err) {
        fail(err, 65);
      }
    },
  );

const silences = program
  .command('silences')
  .description(
    'Silences of a running relay: matching deliveries are not sent (JSON API, api.token).',
  );

silences
  .command('list')
  .description('Active and pending silences, newest first.')
  .addOption(configOption)
  .option('--url <url>', 'relay base URL (default: the configured listen address)')
  .option('--all', 'include silences that ended in the last 24 hours')
  .option('--json', 'print JSON')
  .action(async (opts: { config?: string; url?: string; all?: boolean; json?: boolean }) => {
    try {
      const out = (await callApi(opts, 'GET', `/silences${opts.all ? '?all=true' : ''}`)) as {
        silences: SilenceView[];
      };
      if (opts.json) {
        process.stdout.write(JSON.stringify(out.silences, null, 2) + '\n');
        return;
      }
      for (const s of out.silences) {
        process.stdout.write(
          `${s.id}  ${s.state}  ${s.startsAt} → ${s.endsAt}  ${s.matchers.join(' ')}  by ${s.createdBy}: ${s.comment}\n`,
        );
      }
      if (out.silences.length === 0) process.stdout.write('no silences\n');
    } catch (err) {
      fail(err);
    }
  });

silences
  .command('add')
  .description(
    'Silence what matches every --matcher, e.g. --matcher \'project="web"\' --matcher \'level=~"warning|info"\'.',
  )
  .addOption(configOption)
  .option('--url <url>', 'relay base URL (default: the configured listen address)')
  .option(
    '--matcher <matcher>',
    'label matcher (=, !=, =~, !~), repeatable; labels as in routes, plus route and instance',
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .option('--duration <duration>', 'how long, e.g. 30m, 2h, 1d')
  .option('--ends-at <time>', 'ISO time it ends (instead of --duration)')
  .option('--starts-at <time>', 'ISO time it starts (default: now)')
  .option('--created-by <name>', 'who is silencing (required)')
  .option('--comment <text>', 'why (required)')
  .action(
    async (opts: {
      config?: string;
      url?: string;
      matcher: string[];
      duration?: string;
      endsAt?: string;
      startsAt?: string;
      createdBy?: string;
      comment?: string;
    }) => {
      try {
        // The relay validates and names the field that is wrong.
        const out = (await callApi(opts, 'POST', '/silences', {
          matchers: opts.matcher,
          ...(opts.duration !== undefined ? { duration: opts.duration } : {}),
          ...(opts.endsAt !== undefined ? { endsAt: opts.endsAt } : {}),
          ...(opts.startsAt !== undefined ? { startsAt: opts.startsAt } : {}),
          ...(opts.createdBy !== undefined ? { createdBy: opts.createdBy } : {}),
          ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
        })) as { silence: SilenceView };
        const s = out.silence;
        process.stdout.write(
          `silence ${s.id} ${s.state} until ${s.endsAt}: ${s.matchers.join(' ')}\n`,
        );
      } catch (err) {
        fail(err);
      }
    },
  );

silences
  .command('expire')
  .description('End a silence now, on every replica.')
  .argument('<id>', 'silence id')
  .addOption(configOption)
  .option('--url <url>', 'relay base URL (default: the configured listen address)')
  .action(async (id: string, opts: { config?: string; url?: string }) => {
    try {
      const out = (await callApi(opts, 'DELETE', `/silences/${encodeURIComponent(id)}`)) as {
        silence: SilenceView;
      };
      process.stdout.write(`silence ${out.silence.id} expired at ${out.silence.endsAt}\n`);
    } catch (err) {
      fail(err);
    }
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

program
  .command('render')
  .description(
    'Print what a notifier would send for a sample webhook or a JSON file, without sending it.',
  )
  .argument('<plugin>', 'notifier slug, e.g. dingtalk')
  .argument('<fixture>', `a sample kind (${SAMPLE_KINDS.join(', ')}) or a webhook JSON file`)
  .addOption(configOption)
  .option(
    '--set <key=value>',
    'an instance setting, repeatable; overrides the first route instance of the plugin',
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .option('--resource <resource>', 'Sentry-Hook-Resource of a JSON file (default: guessed)')
  .option('--raw', 'print the body exactly as it would be sent')
  .action(
    async (
      slug: string,
      fixture: string,
      opts: { config?: string; set: string[]; resource?: string; raw?: boolean },
    ) => {
      try {
        const sdk = require('@plugboard/sdk') as typeof import('@plugboard/sdk');
        const fs = require('node:fs') as typeof import('node:fs');
        // Rendering needs no secrets: unset references do not stop it.
        const loaded = load(opts, true);
        const registry = createRegistry(loaded, process.cwd());
        registry.discover();
        const plugin = await registry.getNotifier(slug);

        // The settings: the first route instance using the plugin, then --set.
        const instance = loaded.config.routes
          .flatMap((route) => route.instances)
          .find((i) => i.plugin === slug);
        const raw: Record<string, unknown> = { ...(instance?.config ?? {}) };
        for (const pair of opts.set) {
          const eq = pair.indexOf('=');
          if (eq < 1) throw new Error(`--set expects key=value, got ${JSON.stringify(pair)}`);
          raw[pair.slice(0, eq)] = pair.slice(eq + 1);
        }
        const { config, problems } = sdk.validatePluginConfig(plugin.configFields(), raw);
        for (const p of problems) {
          process.stderr.write(`plugboard: render: ${slug}.${p.field}: ${p.problem} (ignored)\n`);
        }

        // The notification: a recorded sample, or a file.
        let resource: string;
        let body: unknown;
        if (SAMPLE_KINDS.includes(fixture) || fixture === 'legacy_webhook') {
          const sample = loadSample(fixture);
          resource = sample.resource;
          body = sample.body;
        } else if (fs.existsSync(fixture)) {
          body = JSON.parse(fs.readFileSync(fixture, 'utf8')) as unknown;
          const data = (body as { data?: Record<string, unknown> }).data ?? {};
          // What each resource's `data` carries.
          const byKey: Array<[key: string, resource: string]> = [
            ['issue', 'issue'],
            ['event', 'event_alert'],
            ['error', 'error'],
            ['metric_alert', 'metric_alert'],
            ['comment_id', 'comment'],
          ];
          resource =
            opts.resource ??
            byKey.find(([key]) => key in data)?.[1] ??
            ('data' in (body as object) ? 'installation' : 'legacy_webhook');
        } else {
          throw new Error(
            `${JSON.stringify(fixture)} is neither a sample kind (${SAMPLE_KINDS.join(', ')}) nor a file`,
          );
        }
        const parsed =
          resource === 'legacy_webhook'
            ? sdk.parseLegacyWebhook(body)
            : sdk.parseSentryWebhook({ resource, body });
        if (!parsed.ok)
          throw new Error(`cannot parse ${fixture}: ${parsed.reason}: ${parsed.detail}`);
        const notification = parsed.notification;

        // Notifiers that can say what they send do; others get the default text.
        const renderer = (
          plugin as unknown as {
            render?: (n: unknown, c: unknown) => { contentType: string; body: string };
          }
        ).render;
        let out: { contentType: string; body: string };
        if (typeof renderer === 'function') {
          out = await renderer.call(plugin, notification, config);
        } else {
          let text: string;
          try {
            const templates = require('@plugboard/templates') as {
              renderDefault: (n: unknown, o: { escape: 'none' }) => string;
            };
            text = templates.renderDefault(notification, { escape: 'none' });
          } catch {
            text = [notification.title, notification.message, notification.url ?? '']
              .filter((line) => line !== '')
              .join('\n');
          }
          out = { contentType: 'text/plain', body: text };
        }
        process.stderr.write(
          `plugboard: ${slug} would send ${Buffer.byteLength(out.body)} bytes of ${out.contentType} for ${notification.kind}\n`,
        );
        let printed = out.body;
        if (!opts.raw && /json/i.test(out.contentType)) {
          printed = JSON.stringify(JSON.parse(out.body) as unknown, null, 2);
        }
        process.stdout.write(printed.endsWith('\n') ? printed : `${printed}\n`);
      } catch (err) {
        fail(err);
      }
    },
  );

program.parseAsync(process.argv).catch(fail);
