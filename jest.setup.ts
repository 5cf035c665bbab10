import http from 'node:http';
import https from 'node:https';
import nock from 'nock';

// No test may reach beyond this machine: anything that is not a local server
// started by the test itself fails fast instead of hanging on a closed network.
nock.disableNetConnect();
nock.enableNetConnect((host) => /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(host));

// Each test file loads its own copy of nock, which patches the shared `http`
// module; take the patch off again so files do not stack interceptors. The
// global agents are shared too and keep connections alive: a socket nock
// mocked for one file (to jira.example.test:443, say) would be reused by the
// next file's request to the same host, answered by the previous file's
// restored nock ("Disallowed net connect"). Drop them with the file.
afterAll(() => {
  nock.cleanAll();
  nock.restore();
  http.globalAgent.destroy();
  https.globalAgent.destroy();
});
