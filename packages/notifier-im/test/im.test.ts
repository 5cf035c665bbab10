import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import nock from 'nock';
import type { UserSettings } from '@plugboard/sdk';
import { MemoryStore, buildNotification, runNotifier } from '@plugboard/sdk/testing';
import { ImNotifier, mwsSigner, installSigner } from '../src';
import axios from 'axios';

const CLIENT_ID = 'sentry-im-client';
const CLIENT_SECRET = 'im-client-secret-0123456789';
const SENTRY_TOKEN = 'sntrys_token_0123456789abcdef';
const FIXED = new Date('2026-11-25T09:00:00Z');

interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  signatureOk: boolean;
}

/** A local IM API that checks MWS signatures the way the company server would. */
async function startSink(
  reply: (body: Record<string, unknown>) => {
    status: number;
    body?: unknown;
    headers?: object;
  } = () => ({
    status: 200,
    body: { ok: true },
  }),
): Promise<{ url: string; received: Received[]; close: () => Promise<void>; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const date = String(req.headers.date ?? '');
      const expected = createHmac('sha1', CLIENT_SECRET)
        .update(`${req.method} ${req.url}\n${date}`)
        .digest('base64');
      const signatureOk =
        req.headers.authorization === `MWS ${CLIENT_ID}:${expected}` &&
        !Number.isNaN(Date.parse(date));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<
        string,
        unknown
      >;
      received.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        signatureOk,
      });
      const out = signatureOk ? reply(body) : { status: 401, body: { error: 'bad signature' } };
      res.writeHead(out.status, { 'content-type': 'application/json', ...(out.headers ?? {}) });
      res.end(JSON.stringify(out.body ?? {}));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/open/api`,
    received,
    server,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

function baseConfig(apiUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiUrl,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    sender: 'sentry-bot',
    recipients: 'ann@example.com\nbob.smith@example.com',
    ...extra,
  };
}

/** A users service like the relay's, kept in a MemoryStore. */
function memoryUsers(store = new MemoryStore()): UserSettings & { store: MemoryStore } {
  return {
    store,
    async isNotificationEnabled(email, project, options) {
      const s = await store.get<{ global: boolean | null; projects: Record<string, boolean> }>(
        email,
      );
      const own = project ? s?.projects[project] : undefined;
      return own ?? s?.global ?? options?.defaultEnabled ?? true;
    },
  };
}

afterEach(() => nock.cleanAll());

describe('MWS signing', () => {
  it('matches a signature computed independently with a fixed Date, checked by a local server', async () => {
    const sink = await startSink();
    try {
      const http = axios.create({ baseURL: sink.url, transformRequest: [(d: unknown) => d] });
      installSigner(
        http,
        mwsSigner({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }),
        () => FIXED,
      );
      await http.post('/messages?x=1', '{"a":1}', {
        headers: { 'content-type': 'application/json' },
      });
      const got = sink.received[0]!;
      expect(got.signatureOk).toBe(true);
      expect(got.headers.date).toBe('Wed, 25 Nov 2026 09:00:00 GMT');
      const independent = createHmac('sha1', CLIENT_SECRET)
        .update('POST /open/api/messages?x=1\nWed, 25 Nov 2026 09:00:00 GMT')
        .digest('base64');
      expect(got.headers.authorization).toBe(`MWS ${CLIENT_ID}:${independent}`);
    } finally {
      await sink.close();
    }
  });

  it('is refused by the server with a wrong secret, and the error names the settings to check', async () => {
    const sink = await startSink();
    try {
      const result = await runNotifier(new ImNotifier(), buildNotification('issue.created'), {
        config: baseConfig(sink.url, { clientSecret: 'another-secret-0123456789' }),
      });
      expect(result.error?.code).toBe('PB_DELIVERY_UNRECOVERABLE');
      expect(result.error?.message).toMatch(/clientId and clientSecret/);
      expect(JSON.stringify([result.error, result.logs])).not.toContain(
        'another-secret-0123456789',
      );
    } finally {
      await sink.close();
    }
  });
});

describe('generic HMAC-SHA256 scheme', () => {
  it('signs with the configured headers and string to sign', async () => {
    const scope = nock('https://im.example.com')
      .post('/api/messages')
      .times(2)
      .reply(function (uri, body) {
        const h = this.req.headers;
        const text = `${'POST'}|${uri}|${h['x-ts']}|${createHash('sha256').update(JSON.stringify(body)).digest('hex')}`;
        const sig = createHmac('sha256', CLIENT_SECRET).update(text).digest('hex');
        return h['x-sig'] === sig && h['x-app'] === CLIENT_ID ? [200, { ok: true }] : [401, {}];
      });
    const result = await runNotifier(new ImNotifier(), buildNotification('issue.created'), {
      config: baseConfig('https://im.example.com/api', {
        signatureScheme: 'hmac-sha256',
        hmacStringToSign: '{method}|{path}|{timestamp}|{bodySha256}',
        hmacSignatureHeader: 'X-Sig',
        hmacClientIdHeader: 'X-App',
        hmacTimestampHeader: 'X-Ts',
      }),
    });
    expect(result.error).toBeUndefined();
    expect(scope.isDone()).toBe(true);
  });
});

describe('static recipients', () => {
  it('messages each recipient by the local part of the e-mail, with project, message and URL', async () => {
    const sink = await startSink();
    try {
      const n = buildNotification('issue.created', {
        url: 'https://sentry.example.com/organizations/acme/issues/42/',
      });
      const result = await runNotifier(new ImNotifier(), n, {
        config: baseConfig(sink.url),
        idempotencyKey: 'd-1',
      });
      expect(result.error).toBeUndefined();
      expect(sink.received.every((r) => r.signatureOk && r.path === '/open/api/messages')).toBe(
        true,
      );
      const bodies = sink.received
        .map((r) => r.body)
        .sort((a, b) => String(a.to).localeCompare(String(b.to)));
      expect(bodies.map((b) => [b.from, b.to, b.msgId])).toEqual([
        ['sentry-bot', 'ann', 'd-1-ann'],
        ['sentry-bot', 'bob.smith', 'd-1-bob.smith'],
      ]);
      const text = String(bodies[0]!.text);
      expect(text).toContain(n.project!.name);
      expect(text).toContain(n.url!);
      expect(text).toContain(n.title);
    } finally {
      await sink.close();
    }
  });

  it('uses the address mapping, skipping unmapped people', async () => {
    const sink = await startSink();
    try {
      const result = await runNotifier(new ImNotifier(), buildNotification('issue.created'), {
        config: baseConfig(sink.url, {
          addressing: 'mapping',
          addressMap: 'bob.smith@example.com=bsmith',
        }),
      });
      expect(result.error).toBeUndefined();
      expect(sink.received.map((r) => r.body.to)).toEqual(['bsmith']);
    } finally {
      await sink.close();
    }
  });
});

describe('per-user opt-out', () => {
  it('leaves out people who turned IM off, per project or globally', async () => {
    const sink = await startSink();
    try {
      const users = memoryUsers();
      await users.store.set('ann@example.com', { global: true, projects: { 'front-end': false } });
      const result = await runNotifier(new ImNotifier(), buildNotification('issue.created'), {
        config: baseConfig(sink.url, {
          recipients: 'ann@example.com\nbob@example.com\ncid@example.com',
        }),
        users,
      });
      expect(result.error).toBeUndefined();
      expect(sink.received.map((r) => r.body.to).sort()).toEqual(['bob', 'cid']);

      sink.received.length = 0;
      await users.store.set('bob@example.com', { global: false, projects: {} });
      await runNotifier(new ImNotifier(), buildNotification('issue.created'), {
        config: baseConfig(sink.url, {
          recipients: 'ann@example.com\nbob@example.com\ncid@example.com',
          defaultOptIn: false,
        }),
        users,
        idempotencyKey: 'd-2',
      });
      expect(sink.received).toHaveLength(0);
    } finally {
      await sink.close();
    }
  });
});

describe('partial failure', () => {
  it('reports an unknown user and still messages the rest; a retry does not message anyone twice', async () => {
    let fail = true;
    const sink = await startSink((body) => {
      if (body.to === 'ghost') return { status: 404, body: { error: 'unknown user' } };
      if (body.to === 'bob' && fail) return { status: 503 };
      return { status: 200, body: { ok: true } };
    });
    try {
      const store = new MemoryStore();
      const config = baseConfig(sink.url, {
        recipients: 'ann@example.com\nbob@example.com\nghost@example.com',
      });
      const first = await runNotifier(new ImNotifier(), buildNotification('issue.created'), {
        config,
        store,
      });
      expect(first.error?.code).toBe('PB_DELIVERY_FAILED');
      expect(first.error?.message).toMatch(/bob/);
      expect(first.logs.some((l) => l.msg === 'im.rejected' && l.fields.to === 'ghost')).toBe(true);
      expect(sink.received.map((r) => r.body.to).sort()).toEqual(['ann', 'bob', 'ghost']);

      fail = false;
      sink.received.length = 0;
      const second = await runNotifier(new ImNotifier(), buildNotification('issue.created'), {
        config,
        store,
        attempt: 2,
      });
      expect(second.error).toBeUndefined();
      expect(sink.received.map((r) => r.body.to)).toEqual(['bob']);
    } finally {
      await sink.close();
    }
  });

  it('is unrecoverable, listing them, when every recipient is refused', async () => {
    const sink = await startSink(() => ({ status: 404, body: { error: 'unknown user' } }));
    try {
      const result = await runNotifier(new ImNotifier(), buildNotification('issue.created'), {
        config: baseConfig(sink.url),
      });
      expect(result.error?.code).toBe('PB_DELIVERY_UNRECOVERABLE');
      expect(result.error?.message).toMatch(/ann \(HTTP 404: unknown user\).*bob\.smith/);
    } finally {
      await sink.close();
    }
  });

  it('asks to retry after the Retry-After of a 429', async () => {
    const sink = await startSink(() => ({ status: 429, headers: { 'retry-after': '120' } }));
    try {
      const result = await runNotifier(new ImNotifier(), buildNotification('issue.created'), {
        config: baseConfig(sink.url),
      });
      expect(result.error?.code).toBe('PB_DELIVERY_RETRY_AFTER');
      expect(result.error?.retryAfterMs).toBe(120_000);
    } finally {
      await sink.close();
    }
  });
});

describe('Sentry project members', () => {
  const members = (emails: string[]): unknown[] =>
    emails.map((email, i) => ({ id: String(i), email }));
  const sentryConfig = (apiUrl: string): Record<string, unknown> =>
    baseConfig(apiUrl, {
      recipientSource: 'sentry',
      recipients: '',
      sentryUrl: 'https://sentry.example.com',
      sentryToken: SENTRY_TOKEN,
      sentryOrg: 'acme',
    });

  it('follows Link paging, caches the list, and uses the last good copy while Sentry is down', async () => {
    const sink = await startSink();
    let now = Date.now();
    const store = new MemoryStore(() => now);
    const path = '/api/0/projects/acme/front-end/members/';
    const scope = nock('https://sentry.example.com', {
      reqheaders: { authorization: `Bearer ${SENTRY_TOKEN}` },
    })
      .get(path)
      .reply(200, members(['ann@example.com']), {
        Link:
          `<https://sentry.example.com${path}?cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", ` +
          `<https://sentry.example.com${path}?cursor=0:100:0>; rel="next"; results="true"; cursor="0:100:0"`,
      })
      .get(path)
      .query({ cursor: '0:100:0' })
      .reply(200, members(['bob@example.com']), {
        Link: `<https://sentry.example.com${path}?cursor=0:200:0>; rel="next"; results="false"; cursor="0:200:0"`,
      });
    try {
      const n = buildNotification('issue.created');
      const first = await runNotifier(new ImNotifier(), n, {
        config: sentryConfig(sink.url),
        store,
      });
      expect(first.error).toBeUndefined();
      expect(scope.isDone()).toBe(true);
      expect(sink.received.map((r) => r.body.to).sort()).toEqual(['ann', 'bob']);

      // Cached: no call to Sentry (nock would refuse one).
      sink.received.length = 0;
      const second = await runNotifier(new ImNotifier(), n, {
        config: sentryConfig(sink.url),
        store,
        idempotencyKey: 'd-2',
      });
      expect(second.error).toBeUndefined();
      expect(sink.received).toHaveLength(2);

      // Past the TTL Sentry is down: the last good copy is used.
      now += 11 * 60 * 1000;
      nock('https://sentry.example.com').get(path).reply(502);
      sink.received.length = 0;
      const third = await runNotifier(new ImNotifier(), n, {
        config: sentryConfig(sink.url),
        store,
        idempotencyKey: 'd-3',
      });
      expect(third.error).toBeUndefined();
      expect(sink.received).toHaveLength(2);
      expect(third.logs.some((l) => l.msg === 'im.sentry_members_unavailable_using_cache')).toBe(
        true,
      );
      const all = JSON.stringify([first, second, third].map((r) => r.logs));
      expect(all).not.toContain(SENTRY_TOKEN);
      expect(all).not.toContain(CLIENT_SECRET);
    } finally {
      await sink.close();
    }
  });

  it('without a cached copy: retryable when Sentry is down, unrecoverable naming sentryToken on 401', async () => {
    const path = '/api/0/projects/acme/front-end/members/';
    nock('https://sentry.example.com').get(path).reply(500);
    const down = await runNotifier(new ImNotifier(), buildNotification('issue.created'), {
      config: sentryConfig('https://im.example.com/api'),
    });
    expect(down.error?.code).toBe('PB_DELIVERY_FAILED');

    nock('https://sentry.example.com').get(path).reply(401, { detail: 'Invalid token' });
    const denied = await runNotifier(new ImNotifier(), buildNotification('issue.created'), {
      config: sentryConfig('https://im.example.com/api'),
    });
    expect(denied.error?.code).toBe('PB_DELIVERY_UNRECOVERABLE');
    expect(denied.error?.message).toMatch(/sentryToken/);
    expect(JSON.stringify([denied.error, denied.logs, down.error, down.logs])).not.toContain(
      SENTRY_TOKEN,
    );
  });
});

describe('configuration', () => {
  it('names the field of each problem', async () => {
    await expect(
      runNotifier(new ImNotifier(), buildNotification('issue.created'), {
        config: baseConfig('https://im.example.com', {
          recipients: 'not-an-email',
          recipientSource: 'static',
        }),
      }),
    ).rejects.toThrow(/recipients: line 1/);
    await expect(
      runNotifier(new ImNotifier(), buildNotification('issue.created'), {
        config: baseConfig('https://im.example.com', { recipientSource: 'sentry' }),
      }),
    ).rejects.toThrow(/sentryToken/);
  });
});
