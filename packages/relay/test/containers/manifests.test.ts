import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/load';

// Static checks of the deployment files, run with or without podman: the
// Kubernetes manifests keep the container lessons (non-root, read-only root
// filesystem, no service links, probes), and the configurations shipped with
// the examples load with the relay's own loader.

const REPO = resolve(__dirname, '..', '..', '..', '..');
const read = (path: string): string => readFileSync(join(REPO, path), 'utf8');

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function manifest(file: string): Obj {
  const docs = parseAllDocuments(read(`deploy/kubernetes/${file}`));
  expect(docs).toHaveLength(1);
  return docs[0]!.toJS() as Obj;
}

function loads(yamlText: string, env: Record<string, string>): ReturnType<typeof loadConfig> {
  const dir = mkdtempSync(join(tmpdir(), 'pb-manifest-'));
  try {
    const file = join(dir, 'plugboard.yaml');
    writeFileSync(file, yamlText);
    return loadConfig({ file, env, cwd: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const IMAGE_ENV = { PLUGBOARD_LISTEN: '0.0.0.0:8080', PLUGBOARD_DATA_DIR: '/var/lib/plugboard' };

describe('deploy/kubernetes', () => {
  const deployment = manifest('deployment.yaml');
  const pod = deployment.spec.template.spec as Obj;
  const container = pod.containers[0] as Obj;

  it('runs one non-root relay with a read-only root filesystem and no service links', () => {
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy.type).toBe('Recreate');
    expect(pod.enableServiceLinks).toBe(false);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 1000,
      fsGroup: 1000,
    });
    expect(container.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.resources.requests).toBeDefined();
    expect(container.resources.limits.memory).toBeDefined();
    const mounts = Object.fromEntries(
      (container.volumeMounts as Obj[]).map((m) => [m.mountPath, m.name]),
    );
    expect(mounts['/var/lib/plugboard']).toBe('data');
    expect(mounts['/tmp']).toBe('tmp');
  });

  it('probes /healthz for liveness and /readyz for readiness, and drains before SIGKILL', () => {
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    const env = Object.fromEntries((container.env as Obj[]).map((e) => [e.name, e]));
    expect(env.PLUGBOARD_LISTEN.value).toBe('0.0.0.0:8080');
    expect(env.PLUGBOARD_SENTRY_CLIENT_SECRET.valueFrom.secretKeyRef.name).toBe(
      'plugboard-secrets',
    );
    const config = loads(manifest('configmap.yaml').data['plugboard.yaml'], {
      ...IMAGE_ENV,
      PLUGBOARD_SENTRY_CLIENT_SECRET: 'k8s-secret-0123456789',
      WEBHOOK_URL: 'https://hooks.example.com/sentry',
      WEBHOOK_SECRET: 'whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=',
    }).config;
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(
      config.dispatch.shutdownGraceMs + 5000,
    );
  });

  it('ties the Service, the Secret template and the kustomization together', () => {
    expect(manifest('service.yaml').spec.selector).toEqual(deployment.spec.selector.matchLabels);
    expect(Object.keys(manifest('secret.example.yaml').stringData)).toEqual(
      expect.arrayContaining(['sentry-client-secret', 'webhook-url', 'webhook-secret']),
    );
    const kustomization = parse(read('deploy/kubernetes/kustomization.yaml')) as Obj;
    expect(kustomization.resources).not.toContain('secret.example.yaml');
  });
});

describe('examples', () => {
  it('relay-docker: the mounted config loads, and the compose file publishes the relay', () => {
    const loaded = loads(read('examples/relay-docker/plugboard.yaml'), {
      ...IMAGE_ENV,
      PLUGBOARD_SENTRY_CLIENT_SECRET: 'compose-secret-0123456789',
    });
    expect(loaded.config.routes.map((r) => r.name)).toEqual(['everything']);
    const compose = parse(read('examples/relay-docker/compose.yaml')) as Obj;
    const relay = compose.services.relay as Obj;
    expect(relay.volumes).toContain('plugboard-data:/var/lib/plugboard');
    expect(relay.healthcheck.test.join(' ')).toContain('/healthz');
    expect(Object.keys(compose.volumes)).toEqual(['plugboard-data']);
  });

  it('relay-postgres: two replicas on one database, each loading the shared config', () => {
    const compose = parse(read('examples/relay-postgres/compose.yaml'), { merge: true }) as Obj;
    const relays = ['relay-1', 'relay-2'].map((name) => compose.services[name] as Obj);
    for (const relay of relays) {
      expect(relay.environment.PLUGBOARD_DATABASE_URL).toMatch(/^postgres:\/\/.*@postgres:5432\//);
      expect(relay.depends_on.postgres.condition).toBe('service_healthy');
    }
    const loaded = loads(read('examples/relay-docker/plugboard.yaml'), {
      ...IMAGE_ENV,
      PLUGBOARD_SENTRY_CLIENT_SECRET: 'compose-secret-0123456789',
      PLUGBOARD_DATABASE_URL: 'postgres://plugboard:pw@postgres:5432/plugboard',
    });
    expect(loaded.config.databaseUrl).toBe('postgres://plugboard:pw@postgres:5432/plugboard');
  });

  it('notifier-image: installs the packed example into the app root of the relay image', () => {
    const dockerfile = read('examples/notifier-image/Dockerfile');
    expect(dockerfile).toMatch(/^FROM \$\{RELAY_IMAGE\}$/m);
    expect(dockerfile).toContain('npm install --omit=dev');
    expect(read('Dockerfile')).toMatch(/^WORKDIR \/app$/m);
  });
});
