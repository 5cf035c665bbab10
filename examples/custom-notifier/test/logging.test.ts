import { buildNotification, runNotifier, startTestReceiver } from '@plugboard/sdk/testing';
import { MattermostNotifier } from '../src';

// The relay hands a notifier a logger that already carries the instance, the
// plugin, the job and the attempt number (src/dispatch/attempt.ts): a field of
// the same name in a log call would appear twice in one JSON line.
const SET_BY_THE_RELAY = ['instance', 'plugin', 'job', 'attempt'];

it('logs no field the relay already puts on every line', async () => {
  const receiver = await startTestReceiver({ status: 200, body: 'ok' });
  try {
    const result = await runNotifier(new MattermostNotifier(), buildNotification('issue.created'), {
      config: { webhookUrl: `${receiver.url}/hooks/key` },
    });
    expect(result.error).toBeUndefined();
    expect(result.logs.map((l) => l.msg)).toContain('mattermost.posted');
    for (const entry of result.logs) {
      expect(Object.keys(entry.fields).filter((k) => SET_BY_THE_RELAY.includes(k))).toEqual([]);
    }
  } finally {
    await receiver.close();
  }
});
