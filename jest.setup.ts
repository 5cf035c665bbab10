import nock from 'nock';

// No test may reach beyond this machine: anything that is not a local server
// started by the test itself fails fast instead of hanging on a closed network.
nock.disableNetConnect();
nock.enableNetConnect((host) => /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(host));

// Each test file loads its own copy of nock, which patches the shared `http`
// module; take the patch off again so files do not stack interceptors.
afterAll(() => {
  nock.cleanAll();
  nock.restore();
});
