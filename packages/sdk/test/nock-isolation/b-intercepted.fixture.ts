// Run only by ../nock-isolation.test.ts, right after a-skipped.fixture.ts in
// the same worker: its own interceptor must answer.
import https from 'node:https';
import nock from 'nock';

it('is answered by its own interceptor', async () => {
  nock('https://sentry.example.com').get('/api/0/members/').reply(200, 'ours');
  const body = await new Promise<string>((resolve, reject) => {
    https
      .get('https://sentry.example.com/api/0/members/', (res) => {
        let data = '';
        res.on('data', (chunk: Buffer) => (data += chunk.toString()));
        res.on('end', () => resolve(data));
      })
      .on('error', reject);
  });
  expect(body).toBe('ours');
});
