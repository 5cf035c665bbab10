// `@plugboard/sdk/testing`: a test kit for notifier authors. Kept out of the
// main entry point so production code never loads it (or nock).
export { buildNotification } from './notification';
export type { WebhookPayload } from './notification';

export {
  hostileText,
  hostileWebhook,
  hostileNotification,
  hostileLeaks,
  HOSTILE_TEXT,
  HOSTILE_SNIPPETS,
  HOSTILE_HOST,
  FORGED_LOG_LINE,
} from './hostile';
export type { HostileOptions, HostileLeak } from './hostile';

export {
  createTestContext,
  MemoryStore,
  MemoryRateLimiter,
  RecordingLogger,
  DEFAULT_TEST_TIMEOUT_MS,
} from './context';
export type { TestContext, TestContextOptions, LogEntry, LogLevel, Clock } from './context';

export { runNotifier } from './run';
export type { RunNotifierOptions, RunNotifierResult } from './run';

export { recordRequests } from './nock';
export type { RecordRequestsOptions, RequestRecorder, NockScopeLike, NockLike } from './nock';

export { startTestReceiver } from './receiver';
export type { TestReceiver, ReceiverReply, ReceiverReplies, ReceiverHandler } from './receiver';

export type { RecordedRequest } from './requests';
