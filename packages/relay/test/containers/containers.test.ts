import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { loadSample } from '@plugboard/sdk';
import {
  cleanup,
  groupIdOf,
  issueCreated,
  postSentry,
  relayConfig,
  startSink,
  tempDir,
  waitFor,
  writeConfig,
  CLIENT_SECRET,
} from '../integration/helpers';

// The container checks of the "Run it in containers" issue, run with podman
// (`.ci/run` installs it first through the shared container-base script).
// Without podman the whole suite is skipped, loudly. Every image, container,
// volume and compose project made here carries this run's id and is removed
// afterwards; every wait is bounded.

const REPO = resolve(__dirname, '..', '..', '..', '..');
const hasPodman = spawnSync('podman', ['--version'], { stdio: 'ignore' }).status === 0;
const hasCompose = spawnSync('podman-compose', ['version'], { stdio: 'ignore' }).status === 0;
const skipReason = process.env.PLUGBOARD_SKIP_CONTAINER_TESTS
  ? 'PLUGBOARD_SKIP_CONTAINER_TESTS is set'
  : hasPodman
    ? undefined
    : 'podman is not installed (run the shared container-base.sh script, as .ci/run does)';
if (skipReason) {
  console.warn(
    `\n*** CONTAINER TESTS SKIPPED: ${skipReason}. ` +
      'The Dockerfile, the compose examples and the notifier image were NOT checked. ***\n',
  );
}
const describeContainers = skipReason ? describe.skip : describe;

const RUN = `pbt-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const RELAY_IMAGE = `localhost/plugboard-relay-test:${RUN}`;
const NOTIFIER_IMAGE = `localhost/plugboard-relay-mattermost-test:${RUN}`;
const BUILD_TIMEOUT_MS = 20 * 60_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command to completion; the exit code is data, a timeout kills it (code -1). */
function sh(
  cmd: string,
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
): Promise<Run> {
  return new Promise((done) => {
    execFile(
      cmd,
      args,
      {
        timeout: options.timeoutMs ?? 60_000,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        cwd: options.cwd ?? REPO,
        env: { ...process.env, ...options.env },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        done({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

const podman = (args: string[], timeoutMs?: number): Promise<Run> =>
  sh('podman', args, timeoutMs === undefined ? {} : { timeoutMs });

async function ok(promise: Promise<Run>, what: string): Promise<Run> {
  const r = await promise;
  if (r.code !== 0) {
    throw new Error(
      `${what} failed (${r.code}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`,
    );
  }
  return r;
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

const containers = new Set<string>();
const volumes = new Set<string>();
const images = new Set<string>();

/** A config directory the container's non-root user can read. */
function configDir(config: unknown): string {
  const dir = tempDir('pb-ctr-');
  chmodSync(writeConfig(dir, config), 0o644);
  chmodSync(dir, 0o755);
  return dir;
}

/** `podman run -d` on the host network (all traffic stays on 127.0.0.1). */
async function runRelay(
  name: string,
  options: { image?: string; volume: string; config: unknown; port: number; env?: string[] },
): Promise<string> {
  const dir = configDir(options.config);
  containers.add(name);
  await ok(
    podman([
      'run',
      '-d',
      '--name',
      name,
      '--network',
      'host',
      '-v',
      `${options.volume}:/var/lib/plugboard`,
      '-v',
      `${dir}:/etc/plugboard:ro`,
      '-e',
      'PLUGBOARD_CONFIG=/etc/plugboard/plugboard.yaml',
      '-e',
      `PLUGBOARD_LISTEN=127.0.0.1:${options.port}`,
      ...(options.env ?? []).flatMap((e) => ['-e', e]),
      options.image ?? RELAY_IMAGE,
    ]),
    `podman run ${name}`,
  );
  return `http://127.0.0.1:${options.port}`;
}

/** Bounded wait for the image's own HEALTHCHECK to pass (run on demand). */
async function waitHealthy(name: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => (await podman(['healthcheck', 'run', name], 15_000)).code === 0,
    `container ${name} to become healthy`,
    timeoutMs,
    500,
  ).catch(async (err: Error) => {
    const logs = await podman(['logs', name]);
    throw new Error(`${err.message}\n--- logs ---\n${logs.stdout}\n${logs.stderr}`);
  });
}

async function newVolume(): Promise<string> {
  const name = `${RUN}-data-${volumes.size}`;
  volumes.add(name);
  await ok(podman(['volume', 'create', name]), 'podman volume create');
  return name;
}

async function removeContainer(name: string): Promise<void> {
  await podman(['rm', '-f', '-v', '-t', '0', name]);
  containers.delete(name);
}

/** Containers, volumes and the network of a compose project, whatever state it is in. */
async function removeComposeLeftovers(project: string): Promise<void> {
  const label = `label=io.podman.compose.project=${project}`;
  const ids = (await podman(['ps', '-aq', '--filter', label])).stdout.split(/\s+/).filter(Boolean);
  if (ids.length > 0) await podman(['rm', '-f', '-v', '-t', '0', ...ids]);
  const vols = (await podman(['volume', 'ls', '-q', '--filter', label])).stdout
    .split(/\s+/)
    .filter(Boolean);
  if (vols.length > 0) await podman(['volume', 'rm', '-f', ...vols]);
  await podman(['network', 'rm', '-f', `${project}_default`]);
  await podman(['pod', 'rm', '-f', `pod_${project}`]);
}

const timings: Record<string, number> = {};

describeContainers('container images (podman)', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    images.add(RELAY_IMAGE);
    // --format docker: the OCI format has no HEALTHCHECK, and podman would drop it.
    await ok(
      podman(['build', '--format', 'docker', '-t', RELAY_IMAGE, '.'], BUILD_TIMEOUT_MS),
      'building the relay image',
    );
    timings.relayImageBuildMs = Date.now() - t0;
  }, BUILD_TIMEOUT_MS + 30_000);

  afterAll(async () => {
    await cleanup({ removeTemp: true });
    for (const c of [...containers]) await removeContainer(c);
    for (const v of volumes) await podman(['volume', 'rm', '-f', v]);
    for (const i of images) await podman(['rmi', '-f', i], 120_000);
    console.log(`container suite timings: ${JSON.stringify(timings)}`);
  }, 300_000);

  it('is lean: no compiler, no dev dependencies, no test sources, little above its base; labelled', async () => {
    const inspect = await ok(podman(['image', 'inspect', RELAY_IMAGE]), 'podman image inspect');
    const [info] = JSON.parse(inspect.stdout) as Array<{
      Size: number;
      Config: { User: string; Labels: Record<string, string>; ExposedPorts?: object };
      Healthcheck?: { Test: string[] };
    }>;
    const base = await ok(
      podman(['image', 'inspect', '--format', '{{.Size}}', 'node:20-bookworm-slim']),
      'podman image inspect node:20-bookworm-slim',
    );
    const mb = info!.Size / 1e6;
    const addedMb = mb - Number(base.stdout.trim()) / 1e6;
    console.log(
      `relay image ${RELAY_IMAGE}: ${mb.toFixed(1)} MB, of which ${addedMb.toFixed(1)} MB above node:20-bookworm-slim`,
    );
    timings.imageSizeMB = Math.round(mb);
    timings.imageAboveBaseMB = Math.round(addedMb);
    // The base (node, npm, Debian) is most of the image; what the relay adds
    // (its dist/ and production node_modules) must stay small.
    expect(addedMb).toBeLessThan(80);
    expect(info!.Config.User).toBe('node');
    expect(info!.Config.Labels['org.opencontainers.image.title']).toBe('plugboard-relay');
    expect(info!.Config.Labels['org.opencontainers.image.version']).toBeTruthy();
    expect(info!.Healthcheck?.Test.join(' ')).toContain('/healthz');
    const look = await podman([
      'run',
      '--rm',
      '--entrypoint',
      'sh',
      RELAY_IMAGE,
      '-c',
      'command -v gcc g++ make python3 curl; ls /app/node_modules/typescript /app/node_modules/jest ' +
        '/app/packages/relay/src /app/packages/relay/test 2>/dev/null; find /app/packages -name "*.test.*" | head -3; ' +
        'echo END',
    ]);
    expect(look.stdout.trim()).toBe('END');
  });

  it('starts healthy as a non-root user, and delivers a signed webhook to a sink on the host', async () => {
    const sink = await startSink({ kind: 'ok' });
    const port = await freePort();
    const name = `${RUN}-relay`;
    const url = await runRelay(name, {
      volume: await newVolume(),
      config: relayConfig({ dataDir: '/var/lib/plugboard', sinkUrl: sink.url }),
      port,
    });
    await waitHealthy(name);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect((await ok(podman(['exec', name, 'id', '-u']), 'id -u')).stdout.trim()).toBe('1000');
    const logs = (await podman(['logs', name])).stdout;
    expect(logs).toContain('"msg":"plugboard relay started"');
    expect(logs).toContain('"store":"sqlite:/var/lib/plugboard"');

    const { resource, body } = issueCreated('7001');
    const posted = await postSentry(url, resource, body);
    expect(posted.status).toBe(202);
    const got = await waitFor(
      () => sink.requests.find((r) => groupIdOf(r) === '7001'),
      'the delivery to reach the sink',
      20_000,
      100,
    );
    expect(got.verified).toBe(true);
    await removeContainer(name);
  }, 120_000);

  it('drains on SIGTERM within the grace period and loses nothing (restart on the same volume)', async () => {
    const sink = await startSink({ kind: 'hold' });
    const port = await freePort();
    const volume = await newVolume();
    const config = relayConfig({
      dataDir: '/var/lib/plugboard',
      sinkUrl: sink.url,
      dispatch: { shutdownGraceMs: 2000 },
    });
    const first = `${RUN}-drain-1`;
    const url = await runRelay(first, { volume, config, port });
    await waitHealthy(first);
    const ids = ['8001', '8002', '8003'];
    for (const id of ids) {
      const { resource, body } = issueCreated(id);
      expect((await postSentry(url, resource, body)).status).toBe(202);
    }
    // The target hangs: every delivery is in flight when SIGTERM arrives.
    await waitFor(() => sink.requests.length >= ids.length, 'deliveries in flight', 20_000, 50);
    const t0 = Date.now();
    await ok(podman(['stop', '-t', '30', first], 60_000), 'podman stop');
    const stopMs = Date.now() - t0;
    timings.sigtermStopMs = stopMs;
    const state = await ok(
      podman(['inspect', '--format', '{{.State.ExitCode}}', first]),
      'podman inspect',
    );
    expect(state.stdout.trim()).toBe('0'); // exited by itself, not SIGKILLed (137)
    expect(stopMs).toBeLessThan(15_000);
    const logs = (await podman(['logs', first])).stdout;
    expect(logs).toContain('"signal":"SIGTERM"');
    expect(logs).toContain('plugboard relay stopped');
    await removeContainer(first);

    sink.setMode({ kind: 'ok' });
    const second = `${RUN}-drain-2`;
    await runRelay(second, { volume, config, port });
    await waitFor(
      () => {
        const delivered = new Set(sink.requests.slice(ids.length).map((r) => groupIdOf(r) ?? ''));
        return ids.every((id) => delivered.has(id));
      },
      'every acknowledged webhook to be delivered after the restart',
      30_000,
      100,
    );
    await removeContainer(second);
  }, 180_000);

  it('refuses a Kubernetes service-link value in PLUGBOARD_LISTEN with exit code 78', async () => {
    const name = `${RUN}-tcp`;
    containers.add(name);
    const r = await podman(
      ['run', '--name', name, '-e', 'PLUGBOARD_LISTEN=tcp://10.0.0.12:8080', RELAY_IMAGE],
      60_000,
    );
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('PLUGBOARD_LISTEN="tcp://10.0.0.12:8080"');
    expect(r.stderr).toContain('Kubernetes');
    await removeContainer(name);
  }, 90_000);

  it(
    'builds examples/notifier-image: the extra notifier is discovered and delivers',
    async () => {
      const example = join(REPO, 'examples', 'custom-notifier');
      if (!existsSync(join(example, 'dist', 'index.js'))) {
        throw new Error('examples/custom-notifier/dist is missing: run `npm run build` first');
      }
      const context = tempDir('pb-ctx-');
      await ok(
        sh('npm', ['pack', '--silent', '--pack-destination', context], { cwd: example }),
        'npm pack examples/custom-notifier',
      );
      copyFileSync(
        join(REPO, 'examples', 'notifier-image', 'Dockerfile'),
        join(context, 'Dockerfile'),
      );
      expect(readdirSync(context).filter((f) => f.endsWith('.tgz'))).toHaveLength(1);
      const t0 = Date.now();
      images.add(NOTIFIER_IMAGE);
      await ok(
        podman(
          [
            'build',
            '--format',
            'docker',
            '--build-arg',
            `RELAY_IMAGE=${RELAY_IMAGE}`,
            '-t',
            NOTIFIER_IMAGE,
            context,
          ],
          BUILD_TIMEOUT_MS,
        ),
        'building examples/notifier-image',
      );
      timings.notifierImageBuildMs = Date.now() - t0;

      const listed = await ok(
        podman(['run', '--rm', '--network', 'none', NOTIFIER_IMAGE, 'plugins', '--json']),
        'plugboard plugins',
      );
      const plugins = JSON.parse(listed.stdout) as Array<{
        name: string;
        packageName: string;
        status: string;
      }>;
      expect(plugins.find((p) => p.name === 'mattermost')).toMatchObject({
        packageName: 'plugboard-notifier-mattermost',
        status: 'loaded',
      });

      const sink = await startSink({ kind: 'ok' });
      const port = await freePort();
      const name = `${RUN}-mattermost`;
      const url = await runRelay(name, {
        image: NOTIFIER_IMAGE,
        volume: await newVolume(),
        port,
        config: {
          sentry: { clientSecret: CLIENT_SECRET },
          routes: [
            {
              name: 'chat',
              instances: [
                {
                  plugin: 'mattermost',
                  config: { webhookUrl: `${sink.url}/hooks/test-key`, channel: 'ops-alerts' },
                },
              ],
            },
          ],
        },
      });
      await waitHealthy(name);
      const sample = loadSample('event_alert.triggered');
      expect((await postSentry(url, sample.resource, sample.body)).status).toBe(202);
      const got = await waitFor(
        () => sink.requests.find((r) => r.path === '/hooks/test-key'),
        'the Mattermost post to reach the sink',
        20_000,
        100,
      );
      expect(got.body).toMatchObject({ channel: 'ops-alerts', username: 'Sentry' });
      expect((got.body as { text: string }).text).toContain('event_alert.triggered');
      await removeContainer(name);
    },
    BUILD_TIMEOUT_MS,
  );

  const describeCompose = hasCompose ? describe : describe.skip;
  if (!hasCompose && !skipReason)
    console.warn('*** podman-compose is missing: compose checks SKIPPED ***');

  describeCompose('compose examples (podman-compose)', () => {
    const composeEnv = {
      SENTRY_CLIENT_SECRET: CLIENT_SECRET,
      POSTGRES_PASSWORD: 'compose-config-check',
      PLUGBOARD_IMAGE: RELAY_IMAGE,
    };

    it.each(['relay-docker', 'relay-postgres'])('examples/%s/compose.yaml is valid', async (ex) => {
      const file = `examples/${ex}/compose.yaml`;
      const config = await sh('podman-compose', ['-f', file, 'config'], { env: composeEnv });
      if (config.code === 0) {
        expect(config.stdout).toContain(RELAY_IMAGE);
        return;
      }
      // podman-compose 1.0 has no `config` command: parse, interpolate and
      // translate the file with `--dry-run up` (which still creates the
      // project's volumes and network: a throw-away project, removed after).
      expect(config.stderr).toContain("invalid choice: 'config'");
      const project = `${RUN.replace(/-/g, '')}cfg${ex.replace(/-/g, '')}`;
      try {
        const r = await ok(
          sh('podman-compose', ['-p', project, '-f', file, '--dry-run', 'up', '-d', '--no-build'], {
            env: composeEnv,
          }),
          `podman-compose --dry-run up (${file})`,
        );
        expect(r.stdout).toContain(`podman run --name=${project}_relay`);
        expect(r.stdout).toContain(RELAY_IMAGE);
        expect(r.stdout).toContain(`-e PLUGBOARD_SENTRY_CLIENT_SECRET=${CLIENT_SECRET}`);
      } finally {
        await removeComposeLeftovers(project);
      }
    });

    it('examples/relay-docker comes up healthy and a send-test alert arrives', async () => {
      const project = RUN.replace(/-/g, '');
      const port = await freePort();
      const env = { ...composeEnv, PLUGBOARD_HOST_PORT: String(port) };
      const file = ['-p', project, '-f', 'examples/relay-docker/compose.yaml'];
      const container = `${project}_relay_1`;
      const t0 = Date.now();
      try {
        await ok(
          sh('podman-compose', [...file, 'up', '-d'], { env, timeoutMs: 180_000 }),
          'compose up',
        );
        await waitHealthy(container, 90_000);
        expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
        const sent = await ok(
          podman(['exec', container, 'plugboard', 'send-test', 'issue.created']),
          'plugboard send-test',
        );
        expect(sent.stdout).toMatch(/^202 .*"status":"accepted"/);
        await waitFor(
          async () => (await podman(['logs', container])).stdout.includes('ALERT [issue.created]'),
          'the alert in the relay log',
          20_000,
          250,
        );
        timings.composeUpToAlertMs = Date.now() - t0;
      } finally {
        await sh('podman-compose', [...file, 'down', '-v'], { env, timeoutMs: 120_000 });
        await removeComposeLeftovers(project);
      }
    }, 300_000);
  });
});
