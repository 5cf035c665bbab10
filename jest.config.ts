import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from 'jest';

/**
 * The repository compiles to CommonJS. Packages that ship only ES modules
 * (openid-client, oidc-provider, jose, ...) are `require()`d natively by
 * Node 20.19+ at run time, but jest's own loader cannot, so they are listed
 * here and transformed by ts-jest (allowJs) instead of being ignored.
 */
const esmOnly = ['openid-client', 'oidc-provider', 'jose', 'oauth4webapi'];

const config: Config = {
  testEnvironment: 'node',
  // examples/ holds test suites only once an example ships some.
  roots: ['packages', 'examples']
    .filter((d) => existsSync(join(__dirname, d)))
    .map((d) => `<rootDir>/${d}`),
  testMatch: ['**/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: {
    '^.+\\.[tj]sx?$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.jest.json' }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  // Tests exercise the TypeScript sources; the integration suites start the
  // built relay (`npm test` builds first).
  moduleNameMapper: {
    '^@plugboard/sdk$': '<rootDir>/packages/sdk/src/index.ts',
    '^@plugboard/sdk/testing$': '<rootDir>/packages/sdk/src/testing/index.ts',
    '^@plugboard/relay$': '<rootDir>/packages/relay/src/index.ts',
    '^@plugboard/notifier-webhook$': '<rootDir>/packages/notifier-webhook/src/index.ts',
    '^@plugboard/notifier-jira$': '<rootDir>/packages/notifier-jira/src/index.ts',
    '^@plugboard/templates$': '<rootDir>/packages/templates/src/index.ts',
    '^@plugboard/notifier-dingtalk$': '<rootDir>/packages/notifier-dingtalk/src/index.ts',
    '^@plugboard/notifier-feishu$': '<rootDir>/packages/notifier-feishu/src/index.ts',
    '^@plugboard/notifier-im$': '<rootDir>/packages/notifier-im/src/index.ts',
    '^@plugboard/robot-http$': '<rootDir>/packages/robot-http/src/index.ts',
    '^@plugboard/sso$': '<rootDir>/packages/sso/src/index.ts',
  },
  setupFilesAfterEnv: ['<rootDir>/jest.setup.ts'],
  testTimeout: 30000,
  // A worker that ran many suites carries what they left behind (late
  // timers, heap); past this size it is replaced before the next suite, so
  // the heap check starts clean. Which files share a worker therefore varies
  // from run to run: nothing may depend on it (jest.setup.ts resets nock and
  // the global agents at the start of every file).
  workerIdleMemoryLimit: '200MB',
};

export default config;
