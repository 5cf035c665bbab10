#!/usr/bin/env node
import { resolveSsoProviders } from './auth/providers';
import { Command, Option } from 'commander';
import {
  describeErrorChain,
  loadSample,
  SAMPLE_KINDS,
  compactSentryJson,
  signSentryBody,
  type ConfigField,
  type Notification,
  type NotificationPlugin,
  type PluginConfig,
} from '@plugboard/sdk';
import { loadConfig, type LoadedConfig } from './config/load';
import { createRegistry, openStore, redactUrl, resolveInstances, Relay } from './relay';
import {
  formatRoutesReport,
  notificationFromPayload,
  readPayload,
  routesTest,
} from './noise/routes-test';
import { instanceIdOf, shadowedRoutes } from './routing';
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
      // Valid, but a route that can never match is a mistake nothing else reports.
      const shadowed = shadowedRoutes(loaded.config.routes);
      for (const s of shadowed) {
        process.stderr.write(
          `plugboard: warning: route ${s.route.name} (routes[${s.index}]) can never match: ` +
            `route ${s.by.name} (routes[${s.byIndex}]) before it takes everything it would and ` +
            `has no continue: true; add continue: true to ${s.by.name}, or move ${s.route.name} above it\n`,
        );
      }
      const where = loaded.file ? ` (${loaded.file})` : '';
      const summary =
        `listen ${loaded.listen.host}:${loaded.listen.port}, ${loaded.config.routes.length} route(s), ` +
        `${resolved.instances.length + resolved.broken.length} instance(s)` +
        (sso.length > 0 ? `, ${sso.length} sign-in provider(s)` : '') +
        (shadowed.length > 0 ? `; ${shadowed.length} warning(s) above` : '');
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
    'JIRA helpers from @plugboard/notifier-jira, e.g. `plugboard jira fields --url <JIRA> --project KEY --issue-type Bug` (token in JIRA_TOKEN; Server/Data Center without tokens: --username, password in JIRA_PASSWORD).',
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
  .argument(
    '<payload>',
    `a sample kind (${SAMPLE_KINDS.join(', ')}) or a webhook body as JSON (Integration Platform or legacy plugin)`,
  )
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
        const payload = readPayload(file);
        const resource = opts.resource ?? payload.resource;
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
          body: payload.body,
          ...(resource ? { resource } : {}),
          ...(!opts.resource && payload.resource ? { resourceFrom: 'the sample' } : {}),
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
  .option(
    '--exact',
    'send the recorded sample as it is; by default it gets fresh ids, so the relay does not drop it as a duplicate of an earlier one',
  )
  .action(async (kind: string, opts: { config?: string; url?: string; exact?: boolean }) => {
    try {
      const loaded = load(opts);
      // The relay de-duplicates on content, across restarts: the same sample
      // twice would be dropped, so each one gets new ids unless --exact.
      const sample = loadSample(kind, { unique: !opts.exact });
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
      let answer: { status?: unknown; duplicateOf?: unknown; reason?: unknown } = {};
      try {
        answer = JSON.parse(text) as typeof answer;
      } catch {
        // Not JSON: the status line above says enough.
      }
      if (answer.status === 'duplicate') {
        process.stderr.write(
          `plugboard: the relay took this ${kind} as a duplicate` +
            (typeof answer.duplicateOf === 'string' ? ` of webhook ${answer.duplicateOf}` : '') +
            ': it has had the same content before, so nothing is delivered' +
            (opts.exact ? '; leave out --exact to send the sample with fresh ids\n' : '\n'),
        );
      } else if (answer.status === 'ignored') {
        process.stderr.write(
          `plugboard: nothing is delivered: ${typeof answer.reason === 'string' ? answer.reason : 'no route takes it'}; ` +
            `see \`plugboard routes test ${kind}\`\n`,
        );
      }
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

        // The notification: a recorded sample, or a file (the lookup of routes test).
        const payload = readPayload(fixture);
        const { notification } = notificationFromPayload(
          fixture,
          payload.body,
          opts.resource ?? payload.resource,
        );

        // Notifiers that can say what they send do; for the others, notify()
        // runs against a local recorder and what it sent is shown.
        const renderer = (
          plugin as unknown as {
            render?: (n: unknown, c: unknown) => { contentType: string; body: string };
          }
        ).render;
        if (typeof renderer !== 'function') {
          const instanceId = instance
            ? instanceIdOf(
                loaded.config.routes.find((r) => r.instances.includes(instance))!,
                instance,
              )
            : `render/${slug}`;
          await previewNotify(plugin, notification, config, instanceId, opts.raw === true);
          return;
        }
        const out = await renderer.call(plugin, notification, config);
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

/** One HTTP request a notifier made during `render`, as the recorder got it. */
interface RecordedCall {
  method: string;
  /** Where the notifier sent it. */
  url: string;
  headers: Record<string, string>;
  body: string;
}

const TARGET_HEADER = 'x-plugboard-render-target';

/**
 * Run `fn` with every HTTP request of this process (node:http, node:https,
 * global fetch) redirected to a recorder on 127.0.0.1 that answers 200 `{}`.
 * Any other TCP connection is refused, so nothing leaves the machine even
 * when a notifier uses a transport this does not redirect.
 */
async function recordRequests(
  fn: () => Promise<void>,
): Promise<{ calls: RecordedCall[]; error?: unknown }> {
  const http = require('node:http') as typeof import('node:http');
  const https = require('node:https') as typeof import('node:https');
  const net = require('node:net') as typeof import('node:net');
  const calls: RecordedCall[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      const url = headers[TARGET_HEADER] ?? `http://unknown${req.url ?? '/'}`;
      delete headers[TARGET_HEADER];
      // Set by the redirect, not by the notifier.
      delete headers.connection;
      try {
        headers.host = new URL(url).host;
      } catch {
        // Keep the recorder's host.
      }
      calls.push({
        method: req.method ?? 'GET',
        url,
        headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as import('node:net').AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  const saved = {
    httpRequest: http.request,
    httpGet: http.get,
    httpsRequest: https.request,
    httpsGet: https.get,
    fetch: globalThis.fetch,
    connect: net.Socket.prototype.connect,
  };

  type Args = unknown[];
  const redirect =
    (protocol: 'http:' | 'https:') =>
    (...args: Args): import('node:http').ClientRequest => {
      const callback =
        typeof args[args.length - 1] === 'function'
          ? (args.pop() as (res: import('node:http').IncomingMessage) => void)
          : undefined;
      let target: URL;
      let options: import('node:http').RequestOptions;
      if (typeof args[0] === 'string' || args[0] instanceof URL) {
        target = new URL(String(args[0]));
        options = (args[1] ?? {}) as import('node:http').RequestOptions;
      } else {
        options = (args[0] ?? {}) as import('node:http').RequestOptions;
        const host = options.hostname ?? options.host ?? 'localhost';
        target = new URL(
          `${options.protocol ?? protocol}//${host.includes(':') ? `[${host}]` : host}` +
            `${options.port ? `:${String(options.port)}` : ''}${options.path ?? '/'}`,
        );
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(options.headers ?? {})) {
        if (value !== undefined)
          headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
      }
      headers[TARGET_HEADER] = target.href;
      return saved.httpRequest(
        `${base}${target.pathname}${target.search}`,
        {
          method: options.method ?? 'GET',
          headers,
          agent: false,
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
        },
        callback,
      );
    };
  const getter =
    (protocol: 'http:' | 'https:') =>
    (...args: Args): import('node:http').ClientRequest => {
      const req = redirect(protocol)(...args);
      req.end();
      return req;
    };
  const patch = (target: object, key: string, value: unknown): void => {
    Object.defineProperty(target, key, { value, writable: true, configurable: true });
  };
  patch(http, 'request', redirect('http:'));
  patch(http, 'get', getter('http:'));
  patch(https, 'request', redirect('https:'));
  patch(https, 'get', getter('https:'));
  globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const req = new Request(input, init);
    const target = new URL(req.url);
    const headers = new Headers(req.headers);
    headers.set(TARGET_HEADER, target.href);
    const body = req.body ? await req.arrayBuffer() : undefined;
    return saved.fetch(`${base}${target.pathname}${target.search}`, {
      method: req.method,
      headers,
      ...(body ? { body } : {}),
      signal: req.signal,
      redirect: 'manual',
    });
  };
  net.Socket.prototype.connect = function (this: import('node:net').Socket, ...args: Args) {
    // net.connect() passes its normalised [options, callback] as one argument.
    const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
    const to = (
      typeof first === 'object' && first !== null
        ? first
        : /^\d+$/.test(String(first))
          ? { port: first, host: args[1] }
          : { path: first }
    ) as { port?: unknown; host?: unknown; path?: unknown };
    if (
      // http.request passes `path: null` for TCP.
      (to.path === undefined || to.path === null) &&
      Number(to.port) === port &&
      (to.host === undefined || to.host === '127.0.0.1' || to.host === 'localhost')
    ) {
      return (saved.connect as (...a: Args) => import('node:net').Socket).apply(this, args);
    }
    const where =
      typeof to.path === 'string'
        ? to.path
        : `${String(to.host ?? 'localhost')}:${String(to.port)}`;
    process.nextTick(() =>
      this.destroy(new Error(`plugboard render sends nothing: refused a connection to ${where}`)),
    );
    return this;
  } as typeof net.Socket.prototype.connect;

  try {
    await fn();
    return { calls };
  } catch (error) {
    return { calls, error };
  } finally {
    patch(http, 'request', saved.httpRequest);
    patch(http, 'get', saved.httpGet);
    patch(https, 'request', saved.httpsRequest);
    patch(https, 'get', saved.httpsGet);
    globalThis.fetch = saved.fetch;
    net.Socket.prototype.connect = saved.connect;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Header names whose values are credentials, whatever the notifier. */
const SECRET_HEADER =
  /^(authorization|proxy-authorization|cookie)$|token|secret|password|api-?key/i;
/** Values of such headers that are fixed words, not credentials (JIRA's XSRF opt-out). */
const NOT_SECRET = new Set(['no-check']);
/** Query parameters whose values are credentials (robot tokens, signatures in the URL). */
const SECRET_PARAM = /token|key|secret|sign|password|auth/i;

/**
 * `render` for a notifier without render(): run its notify() against the
 * recorder and print each request it made (method, URL, headers, body), with
 * its secret settings and credential headers masked.
 */
async function previewNotify(
  plugin: NotificationPlugin,
  notification: Notification,
  config: PluginConfig,
  instanceId: string,
  raw: boolean,
): Promise<void> {
  const sdkTesting = require('@plugboard/sdk/testing') as typeof import('@plugboard/sdk/testing');
  const ctx = sdkTesting.createTestContext(config, {
    instanceId,
    idempotencyKey: 'render-preview',
  });
  const fields: ConfigField[] = plugin.configFields();
  if (!(await plugin.isConfigured(ctx))) {
    const missing = fields
      .filter(
        (f) => f.required !== false && [undefined, null, ''].includes(config[f.name] as never),
      )
      .map((f) => f.name);
    throw new Error(
      `${plugin.slug} has no render(), and its notify() cannot be previewed without its settings` +
        (missing.length > 0 ? ` (${missing.join(', ')})` : '') +
        ': give them with --set key=value or in a route instance',
    );
  }
  const secrets = fields
    .filter((f) => f.type === 'secret')
    .map((f) => config[f.name])
    .filter((v): v is string => typeof v === 'string' && v.length >= 4);
  const mask = (text: string): string =>
    secrets.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
  const maskUrl = (text: string): string => {
    try {
      const url = new URL(text);
      if (url.password) url.password = 'redacted';
      for (const name of [...url.searchParams.keys()]) {
        if (SECRET_PARAM.test(name)) url.searchParams.set(name, 'redacted');
      }
      return mask(url.toString());
    } catch {
      return mask(text);
    }
  };

  const timer = setTimeout(() => ctx.abortController.abort(), ctx.timeoutMs);
  const { calls, error } = await recordRequests(() =>
    plugin.notify(notification, ctx).finally(() => clearTimeout(timer)),
  );
  const slug = plugin.slug;
  if (calls.length === 0) {
    throw new Error(
      `${slug} has no render() and no preview: its notify() ${
        error === undefined
          ? 'made no HTTP request'
          : `made no HTTP request before failing: ${describeErrorChain(error).split('\n').join(' | ')}`
      }`,
    );
  }
  process.stderr.write(
    `plugboard: ${slug} has no render(): ran its notify() for ${notification.kind} against a local ` +
      `recorder (nothing was sent; every answer was 200 {}); it made ${calls.length} request(s)\n`,
  );
  calls.forEach((call, i) => {
    const contentType = call.headers['content-type'] ?? 'no content type';
    process.stderr.write(
      `plugboard: ${slug} would send ${call.method} ${maskUrl(call.url)}: ` +
        (call.body === ''
          ? 'no body\n'
          : `${Buffer.byteLength(call.body)} bytes of ${contentType}\n`),
    );
    const lines = [`${call.method} ${maskUrl(call.url)}`];
    for (const [name, value] of Object.entries(call.headers)) {
      const secret = SECRET_HEADER.test(name) && !NOT_SECRET.has(value);
      lines.push(`${name}: ${secret ? '[redacted]' : mask(value)}`);
    }
    let body = call.body;
    if (!raw && /json/i.test(contentType)) {
      try {
        body = JSON.stringify(JSON.parse(body) as unknown, null, 2);
      } catch {
        // Not JSON after all: as sent.
      }
    }
    lines.push('', mask(body));
    const text = lines.join('\n');
    process.stdout.write(`${i > 0 ? '\n' : ''}${text.endsWith('\n') ? text : `${text}\n`}`);
  });
  if (error !== undefined) {
    process.stderr.write(
      `plugboard: ${slug}: the preview is incomplete: notify() needs real answers from the ` +
        'target and stopped with: ' +
        `${describeErrorChain(error).split('\n').join(' | ')}\n`,
    );
  }
}

program.parseAsync(process.argv).catch(fail);
