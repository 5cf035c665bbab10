import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadSample } from '@plugboard/sdk';
import {
  CLIENT_SECRET,
  cleanup,
  issueCreated,
  postSentry,
  requireBuiltRelay,
  startRelay,
  tempDir,
  waitFor,
  writeConfig,
} from '../../relay/test/integration/helpers';
import { bugFieldList, ISSUE_TYPES } from './helpers';

// The BUILT relay as a child process, routing to the `jira` notifier, which
// talks to a fake JIRA (a real node:http server on 127.0.0.1). The relay finds
// the notifier the way an operator installs it: the app's package.json
// depends on the package, which sits in the app's node_modules.

const PAT = 'e2e-personal-access-token';

interface JiraRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

let server: Server;
let jiraUrl: string;
const requests: JiraRequest[] = [];

function send(res: import('node:http').ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

beforeAll(async () => {
  requireBuiltRelay();
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const path = req.url ?? '';
      requests.push({
        method: req.method ?? '',
        path,
        headers: req.headers,
        body: raw ? (JSON.parse(raw) as unknown) : undefined,
      });
      if (req.headers.authorization !== `Bearer ${PAT}`) return send(res, 401, {});
      const p = path.split('?')[0];
      if (req.method === 'GET' && p === '/rest/api/2/issue/createmeta/EX/issuetypes') {
        return send(res, 200, { startAt: 0, maxResults: 50, isLast: true, values: ISSUE_TYPES });
      }
      if (req.method === 'GET' && p === '/rest/api/2/issue/createmeta/EX/issuetypes/1') {
        return send(res, 200, { startAt: 0, maxResults: 50, isLast: true, values: bugFieldList() });
      }
      if (req.method === 'GET' && p === '/rest/api/2/search') {
        return send(res, 200, { issues: [] });
      }
      if (req.method === 'POST' && p === '/rest/api/2/issue') {
        return send(res, 201, { id: '10100', key: 'EX-1' });
      }
      if (req.method === 'POST' && p === '/rest/api/2/issue/EX-1/comment') {
        return send(res, 201, { id: '1' });
      }
      if (req.method === 'POST' && p === '/rest/api/2/issue/EX-1/remotelink') {
        return send(res, 201, { id: 1 });
      }
      return send(res, 404, { errorMessages: ['not found'] });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jiraUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await cleanup({ removeTemp: true });
  await new Promise((resolve) => server.close(resolve));
});

it('creates one JIRA issue for a Sentry issue, then comments on a second alert for it', async () => {
  const dir = tempDir('pb-jira-e2e-');
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name: 'jira-e2e-app',
      version: '1.0.0',
      private: true,
      dependencies: { '@plugboard/notifier-jira': '0.1.0' },
    }),
  );
  mkdirSync(join(dir, 'node_modules', '@plugboard'), { recursive: true });
  symlinkSync(
    resolve(__dirname, '..'),
    join(dir, 'node_modules', '@plugboard', 'notifier-jira'),
    'dir',
  );
  const config = writeConfig(dir, {
    dataDir: join(dir, 'data'),
    sentry: { clientSecret: CLIENT_SECRET },
    log: { level: 'info' },
    dispatch: { backoff: { initialMs: 100, factor: 2, maxMs: 400 }, pollIntervalMs: 100 },
    routes: [
      {
        name: 'all',
        instances: [
          {
            name: 'jira',
            plugin: 'jira',
            config: {
              baseUrl: jiraUrl,
              deployment: 'server',
              token: PAT,
              projectKey: 'EX',
              issueType: 'Bug',
              fields: 'duedate: 2015-07-31\nFeature: Feature 1',
            },
          },
        ],
      },
    ],
  });
  const relay = await startRelay({
    config,
    cwd: dir,
    env: { PLUGBOARD_LISTEN: '127.0.0.1:0' },
  });

  const issue = issueCreated('4242');
  const first = await postSentry(relay.url, issue.resource, issue.body);
  expect(first.status).toBeLessThan(300);

  const creates = (): JiraRequest[] =>
    requests.filter((r) => r.method === 'POST' && r.path === '/rest/api/2/issue');
  await waitFor(() => creates().length === 1, 'the create request');
  const body = creates()[0]!.body as { fields: Record<string, unknown> };
  expect(JSON.stringify(body)).toContain('"duedate":"2015-07-31"');
  expect(body.fields).toMatchObject({
    project: { key: 'EX' },
    issuetype: { id: '1' },
    summary: '[front-end] ReferenceError: blooopy is not defined',
    customfield_10300: [{ value: 'Feature 1' }],
    labels: ['sentry-4242'],
  });
  expect(String(body.fields.description)).toContain('*Culprit:* ?(runner)');

  // A distinct webhook (not a redelivery) about the same Sentry issue.
  const alert = loadSample('event_alert.triggered');
  const alertBody = alert.body as { data: { event: Record<string, unknown> } };
  alertBody.data.event.issue_id = '4242';
  const second = await postSentry(relay.url, alert.resource, alertBody);
  expect(second.status).toBeLessThan(300);

  await waitFor(
    () => requests.some((r) => r.path === '/rest/api/2/issue/EX-1/comment'),
    'the comment on EX-1',
  );
  expect(creates()).toHaveLength(1);
  // The token reaches JIRA only, never the relay's logs.
  expect(relay.stdout()).not.toContain(PAT);
  expect(relay.stderr()).not.toContain(PAT);
});
