'use strict';
// Fixed order for ../nock-isolation.test.ts: by file name, so the skipped
// file always runs first in the one worker.
const Sequencer = require('@jest/test-sequencer').default;

module.exports = class ByName extends Sequencer {
  sort(tests) {
    return [...tests].sort((a, b) => a.path.localeCompare(b.path));
  }
};
