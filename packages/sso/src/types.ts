import type { SsoError } from './errors';

/** A value pipeline state can hold: it is stored as JSON between requests. */
export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** What earlier steps bound with `helper.bindState`, as `buildIdentity` receives it. */
export type PipelineState = Readonly<Record<string, JsonValue>>;

/** Who signed in, as the provider vouches for it. */
export interface Identity {
  /** The provider's stable id of the user (OIDC `sub`); never an e-mail address that can change. */
  id: string;
  email: string;
  name?: string;
  /** Whether the provider has verified `email`; undefined when it does not say. */
  emailVerified?: boolean;
  /** Extra facts for the host: groups, roles, selected claims. Never tokens. */
  data?: Record<string, unknown>;
}

/**
 * The request a view sees: the same shape for the first step (started by
 * `GET /login/:providerId`) and for every callback (`GET|POST /callback`).
 */
export interface PipelineRequest {
  /** `start` for the dispatch that begins the flow, `callback` afterwards. */
  readonly phase: 'start' | 'callback';
  readonly method: 'GET' | 'POST';
  /** The external URL of this request (built from `publicUrl`), query included. */
  readonly url: URL;
  readonly query: URLSearchParams;
  /** The urlencoded body of a POST; empty for GET. */
  readonly body: URLSearchParams;
  /**
   * The callback parameters wherever the method puts them: the body of a
   * POST (OIDC `form_post`, a company SSO posting back), the query of a GET.
   */
  readonly params: URLSearchParams;
  /** A request header (lowercase name), e.g. `user-agent`. */
  header(name: string): string | undefined;
}

/** A page or a redirect: the answer of a step that stays where it is. */
export type ViewResponse =
  | {
      readonly type: 'page';
      readonly html: string;
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | { readonly type: 'redirect'; readonly location: string };

/**
 * What a view's `dispatch` returns; exactly one per request (passport's
 * success/fail/redirect/error, as a typed result):
 * - `respond`: answer with a page or a redirect; the pipeline stays on this step;
 * - `next`: this step is done (after `bindState`); the next view is dispatched
 *   with the same request, or, after the last one, the identity is built;
 * - `error`: the flow ends with this error.
 */
export type ViewOutcome =
  | { readonly kind: 'respond'; readonly response: ViewResponse }
  | { readonly kind: 'next' }
  | { readonly kind: 'error'; readonly error: SsoError };

/**
 * What a view may do besides reading the request: Sentry's pipeline object
 * (`bind_state`, `fetch_state`, `next_step`, `error`). A fresh helper is made
 * for every request; views and providers keep no per-request state.
 */
export interface PipelineHelper {
  /** The id the host gave this provider (`/login/:providerId`). */
  readonly providerId: string;
  /** The one URL every step comes back to (the OAuth `redirect_uri`). */
  readonly callbackUrl: string;
  /**
   * The flow's `state` value: send it to the identity provider (OAuth
   * `state`, a hidden form field) so that it comes back as the `state`
   * parameter of the callback. The router refuses any callback whose `state`
   * does not match the flow bound to the browser's cookie.
   */
  readonly state: string;
  /** Index of the current view in the pipeline. */
  readonly step: number;
  /** The router's clock (ms since the epoch); injectable in tests. */
  now(): number;
  /** What an earlier step (or this one) bound under `key`. */
  fetchState<T extends JsonValue = JsonValue>(key: string): T | undefined;
  /** Keeps `value` for later steps and `buildIdentity`. Stored server-side, never in the browser. */
  bindState(key: string, value: JsonValue): void;
  /** This step is done. */
  nextStep(): ViewOutcome;
  /** Send the browser elsewhere (an identity provider); the step stays. */
  redirect(location: string | URL): ViewOutcome;
  /** Answer with an HTML page (escape everything you interpolate); the step stays. */
  render(
    html: string,
    options?: { status?: number; headers?: Record<string, string> },
  ): ViewOutcome;
  /** End the flow: a message for the user (shown as is: no secrets), or an SsoError. */
  error(error: string | SsoError): ViewOutcome;
}

/** One step of a provider's pipeline: Sentry's `AuthView`. */
export interface AuthView {
  /**
   * A stable name for the step (`oidc.login`). The names of a pipeline's
   * views make its fingerprint: a flow started under one pipeline is refused
   * by another.
   */
  readonly name: string;
  dispatch(request: PipelineRequest, helper: PipelineHelper): Promise<ViewOutcome>;
}

/**
 * Server-side storage for flows, with expiry. The relay implements it on its
 * store (namespace `sso-flows`); {@link MemoryFlowStore} serves one process.
 * Values are JSON-serialisable.
 */
export interface FlowStore {
  get(id: string): Promise<unknown | undefined>;
  set(id: string, value: unknown, ttlSeconds: number): Promise<void>;
  delete(id: string): Promise<void>;
  /** Atomic: true when this call set it (used for one-time consumption / tombstones). */
  setIfAbsent(id: string, value: unknown, ttlSeconds: number): Promise<boolean>;
}

/** The logger the router writes to (pino-compatible). */
export interface SsoLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
