// Run only by ../nock-isolation.test.ts. A file whose every test is skipped
// (a suite waiting for a service that is missing) still loads its nock, and
// jest runs none of its hooks: nothing of this file's may leak into the next.
import nock from 'nock';

describe.skip('a suite skipped for want of a service', () => {
  it('never runs', () => {
    nock('https://sentry.example.com').get('/never').reply(500);
  });
});
