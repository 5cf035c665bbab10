import { createHash } from 'node:crypto';
import { SsoError } from './errors';
import type { SsoProvider } from './provider';
import type { AuthView, Identity, JsonValue, PipelineHelper, ViewOutcome } from './types';

/**
 * A pipeline's fingerprint: the provider's slug and its views' names. A flow
 * records it when it starts and is refused when the pipeline it comes back
 * to differs (Sentry's pipeline `signature`).
 */
export function pipelineFingerprint(provider: SsoProvider, views: readonly AuthView[]): string {
  const names = views.map((view) => view.name);
  return createHash('sha256')
    .update(JSON.stringify([provider.slug, names]))
    .digest('base64url');
}

/** Checks that `views` is a usable pipeline; returns a reason when it is not. */
export function pipelineProblem(views: unknown): string | undefined {
  if (!Array.isArray(views) || views.length === 0) return 'getAuthPipeline() returned no views';
  for (const [i, view] of views.entries()) {
    const v = view as Partial<AuthView> | null;
    if (typeof v?.dispatch !== 'function') return `view ${i} has no dispatch()`;
    if (typeof v.name !== 'string' || v.name === '') return `view ${i} has no name`;
  }
  return undefined;
}

const NEXT: ViewOutcome = Object.freeze({ kind: 'next' });

export interface HelperContext {
  providerId: string;
  callbackUrl: string;
  state: string;
  step: number;
  now: () => number;
  /** The flow's bound state; the helper writes into it. */
  data: Map<string, JsonValue>;
}

/** A copy that is plain JSON, or an error naming why `value` is not. */
function jsonCopy(key: string, value: unknown): JsonValue {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`bindState(${JSON.stringify(key)}): the value is not JSON`, {
      cause: err,
    });
  }
  if (text === undefined) {
    throw new TypeError(`bindState(${JSON.stringify(key)}): the value is not JSON`);
  }
  return JSON.parse(text) as JsonValue;
}

/** The helper one view gets for one request. */
export function createHelper(ctx: HelperContext): PipelineHelper {
  return Object.freeze({
    providerId: ctx.providerId,
    callbackUrl: ctx.callbackUrl,
    state: ctx.state,
    step: ctx.step,
    now: ctx.now,
    fetchState<T extends JsonValue = JsonValue>(key: string): T | undefined {
      const value = ctx.data.get(key);
      return value === undefined ? undefined : (structuredClone(value) as T);
    },
    bindState(key: string, value: JsonValue): void {
      if (typeof key !== 'string' || key === '') {
        throw new TypeError('bindState: the key must be a non-empty string');
      }
      ctx.data.set(key, jsonCopy(key, value));
    },
    nextStep(): ViewOutcome {
      return NEXT;
    },
    redirect(location: string | URL): ViewOutcome {
      return Object.freeze({
        kind: 'respond',
        response: Object.freeze({ type: 'redirect', location: String(location) }),
      });
    },
    render(
      html: string,
      options: { status?: number; headers?: Record<string, string> } = {},
    ): ViewOutcome {
      return Object.freeze({
        kind: 'respond',
        response: Object.freeze({
          type: 'page',
          html,
          status: options.status ?? 200,
          ...(options.headers === undefined ? {} : { headers: { ...options.headers } }),
        }),
      });
    },
    error(error: string | SsoError): ViewOutcome {
      const err =
        typeof error === 'string'
          ? new SsoError('PB_SSO_PIPELINE_ERROR', {
              message: `SSO provider ${ctx.providerId}: ${error}`,
              userMessage: error,
            })
          : error;
      return Object.freeze({ kind: 'error', error: err });
    },
  });
}

/**
 * The outcome when it is one of the closed set, else undefined: a view that
 * returns anything else is a bug, reported as such instead of guessed at.
 */
export function checkOutcome(outcome: unknown): ViewOutcome | undefined {
  if (typeof outcome !== 'object' || outcome === null) return undefined;
  const o = outcome as { kind?: unknown; response?: unknown; error?: unknown };
  switch (o.kind) {
    case 'next':
      return outcome as ViewOutcome;
    case 'error':
      return o.error instanceof Error ? (outcome as ViewOutcome) : undefined;
    case 'respond': {
      const r = o.response as {
        type?: unknown;
        html?: unknown;
        status?: unknown;
        location?: unknown;
      };
      if (r?.type === 'page' && typeof r.html === 'string' && Number.isInteger(r.status)) {
        return outcome as ViewOutcome;
      }
      if (r?.type === 'redirect' && typeof r.location === 'string') return outcome as ViewOutcome;
      return undefined;
    }
    default:
      return undefined;
  }
}

/** The identity when it has what every host needs, else an SsoError saying what is missing. */
export function checkIdentity(providerId: string, identity: unknown): Identity {
  const id = identity as Partial<Identity> | null | undefined;
  const missing: string[] = [];
  if (typeof id?.id !== 'string' || id.id === '') missing.push('id');
  if (typeof id?.email !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(id.email)) missing.push('email');
  if (id?.name !== undefined && typeof id.name !== 'string') missing.push('name (not text)');
  if (id?.emailVerified !== undefined && typeof id.emailVerified !== 'boolean') {
    missing.push('emailVerified (not a boolean)');
  }
  if (missing.length > 0) {
    throw new SsoError('PB_SSO_IDENTITY_INVALID', {
      message: `SSO provider ${providerId}: buildIdentity() gave no usable ${missing.join(', ')}`,
    });
  }
  return identity as Identity;
}
