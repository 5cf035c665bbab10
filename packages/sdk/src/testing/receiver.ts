import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { normaliseHeaders, recordedRequest } from './requests';
import type { RecordedRequest } from './requests';

/** How the receiver answers one request. */
export interface ReceiverReply {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  /** Objects are sent as JSON. */
  body?: string | object;
  /** Wait this long before answering (to exercise timeouts). */
  delayMs?: number;
}

export type ReceiverHandler = (
  request: RecordedRequest,
  index: number,
) => ReceiverReply | Promise<ReceiverReply>;

/**
 * A fixed answer, a sequence (the last one repeats: `[{status: 503}, {}]`
 * fails once then succeeds), or a function of the request.
 */
export type ReceiverReplies = ReceiverReply | readonly ReceiverReply[] | ReceiverHandler;

export interface TestReceiver {
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  url: string;
  /** Requests in arrival order, recorded before the answer is sent. */
  requests: RecordedRequest[];
  /** Change how later requests are answered. */
  reply(replies: ReceiverReplies): void;
  /** Stop listening and drop open connections (delayed answers included). */
  close(): Promise<void>;
}

/**
 * A real HTTP server on 127.0.0.1 (random port) that records what it gets.
 * Needs no mocking library and exercises the real HTTP stack (keep-alive,
 * timeouts, headers on the wire), so one end-to-end test per notifier is cheap.
 */
export async function startTestReceiver(replies: ReceiverReplies = {}): Promise<TestReceiver> {
  let current: ReceiverReplies = replies;
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let base = '';

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const index = requests.length;
      const request = recordedRequest(
        req.method ?? 'GET',
        `${base}${req.url ?? '/'}`,
        normaliseHeaders(Object.entries(req.headers)),
        Buffer.concat(chunks).toString('utf8'),
      );
      requests.push(request);
      void answerFor(current, request, index)
        .then((answer) => {
          const send = (): void => {
            timers.delete(timer);
            if (res.destroyed) return;
            const body = answer.body ?? '';
            const text = typeof body === 'string' ? body : JSON.stringify(body);
            const headers: Record<string, string> = { ...(answer.headers ?? {}) };
            if (typeof body !== 'string' && !hasHeader(headers, 'content-type')) {
              headers['content-type'] = 'application/json';
            }
            res.writeHead(answer.status ?? 200, headers);
            res.end(text);
          };
          const timer = setTimeout(send, answer.delayMs ?? 0);
          timers.add(timer);
        })
        .catch((err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`test receiver handler failed: ${(err as Error).message ?? String(err)}`);
        });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    requests,
    reply(next) {
      current = next;
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function answerFor(
  replies: ReceiverReplies,
  request: RecordedRequest,
  index: number,
): Promise<ReceiverReply> {
  if (typeof replies === 'function') return replies(request, index);
  if (Array.isArray(replies)) {
    const list = replies as readonly ReceiverReply[];
    return list[Math.min(index, list.length - 1)] ?? {};
  }
  return replies as ReceiverReply;
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}
