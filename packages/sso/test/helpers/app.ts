import express from 'express';
import {
  createSsoRouter,
  MemoryFlowStore,
  SsoError,
  type FlowStore,
  type SsoRouterOptions,
  type SsoRouterProvider,
  type SsoSuccess,
} from '@plugboard/sso';

export const PUBLIC_URL = 'http://127.0.0.1:8080';

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  obj: object;
  msg: string | undefined;
}

export interface TestApp {
  app: express.Express;
  store: FlowStore;
  successes: SsoSuccess[];
  errors: SsoError[];
  logs: LogLine[];
}

/**
 * The router mounted at /auth in an express app the way a host would mount
 * it: onSuccess answers 200 with what it got, onError answers the error's
 * status with its public fields (what the relay's pages would show).
 */
export function testApp(
  providers: SsoRouterProvider[],
  options: Partial<Omit<SsoRouterOptions, 'providers'>> & { store?: FlowStore } = {},
): TestApp {
  const store = options.store ?? options.flowStore ?? new MemoryFlowStore();
  const successes: SsoSuccess[] = [];
  const errors: SsoError[] = [];
  const logs: LogLine[] = [];
  const logger = {
    info: (obj: object, msg?: string) => logs.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg?: string) => logs.push({ level: 'warn', obj, msg }),
    error: (obj: object, msg?: string) => logs.push({ level: 'error', obj, msg }),
  };
  const app = express();
  app.use(
    '/auth',
    createSsoRouter({
      publicUrl: PUBLIC_URL,
      logger,
      ...options,
      providers,
      flowStore: store,
      onSuccess:
        options.onSuccess ??
        (async (result, _req, res) => {
          successes.push(result);
          res.status(200).json({ signedIn: result.identity, returnTo: result.returnTo ?? null });
        }),
      onError: (error, _req, res) => {
        errors.push(error);
        res.status(error.status).json({
          code: error.code,
          reason: error.reason,
          check: error.check ?? null,
          userMessage: error.userMessage,
        });
      },
    }),
  );
  return { app, store, successes, errors, logs };
}
