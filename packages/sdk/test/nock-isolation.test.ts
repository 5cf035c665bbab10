import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

// The suite's nock set-up (jest.setup.ts) must keep test files apart in a
// worker, whatever the file before did: here a file with every test skipped
// (its hooks never run) precedes one that relies on its own interceptor. The
// two fixtures run in a jest of their own, in one worker, in a fixed order.

const ROOT = join(__dirname, '..', '..', '..');
const DIR = join(__dirname, 'nock-isolation');

it('gives each test file its own nock, even after a file whose hooks never ran', () => {
  const res = spawnSync(
    process.execPath,
    [
      require.resolve('jest/bin/jest'),
      '--config',
      join(ROOT, 'jest.config.ts'),
      '--runInBand',
      '--ci',
      '--testMatch',
      '**/nock-isolation/*.fixture.ts',
      '--testSequencer',
      join(DIR, 'sequencer.js'),
      DIR,
    ],
    { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
  );
  const out = `${res.stdout}\n${res.stderr}`;
  expect(out).toMatch(/Tests:\s+1 skipped, 1 passed, 2 total/);
  expect(res.status).toBe(0);
});
