import type { TSchema } from 'typebox';
import Value from 'typebox/value';
import { Agent, fetch as undiciFetch } from 'undici';
import { ControlPlaneError } from '../errors.ts';
import { HeartbeatAnswer, type HeartbeatRequest, RegisterAnswer, type RegisterRequest } from './protocol.ts';

/** The part of fetch the client uses; tests pass a fake answering `Response`s. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/**
 * CONTROL_PLANE_URL without its credentials (fetch refuses a URL that has them) and those
 * credentials as a Basic Authorization header: `http://agent:<token>@host:3000` works behind
 * a proxy that wants Basic auth and with a control plane that takes the token as a password.
 */
export function parseControlPlaneUrl(raw: string): { url: string; basicAuth?: string } {
  const url = new URL(raw);
  let basicAuth: string | undefined;
  if (url.username || url.password) {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    basicAuth = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  return { url: url.href.replace(/\/+$/, ''), basicAuth };
}

export interface ControlPlaneClientOptions {
  /** CONTROL_PLANE_URL (or the process's own gateway); may carry credentials. */
  url: string;
  /** NODE_REGISTRATION_TOKEN, sent as a bearer token at registration. */
  registrationToken?: string;
  /** An API key of this deployment, used at registration when there is no other credential. */
  apiKey?: string;
  /** Default: undici's fetch over a connection pool of the client's own, closed by close(). */
  fetch?: FetchLike;
  /** Each request's time limit. Default 10 000 ms. */
  timeoutMs?: number;
}

export interface ControlPlaneClient {
  /** The control plane's URL without credentials: what the identity file names, what logs show. */
  readonly url: string;
  register(body: RegisterRequest, signal?: AbortSignal): Promise<RegisterAnswer>;
  heartbeat(
    node: { node_id: string; node_token: string },
    body: HeartbeatRequest,
    signal?: AbortSignal,
  ): Promise<HeartbeatAnswer>;
  close(): Promise<void>;
}

/** The one sentence a failed answer gives: the contract's `message`, else the start of the body. */
function describeAnswer(status: number, text: string): string {
  try {
    const body = JSON.parse(text) as { message?: unknown; error?: unknown };
    const said = typeof body.message === 'string' ? body.message : body.error;
    if (typeof said === 'string') return `${status} ${said.slice(0, 200)}`;
  } catch {
    // not JSON: the text itself
  }
  return `${status} ${text.replace(/\s+/g, ' ').trim().slice(0, 200)}`.trim();
}

function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

/** Registration and heartbeats over HTTP, each answer checked against its schema. */
export function createControlPlaneClient(options: ControlPlaneClientOptions): ControlPlaneClient {
  const { url, basicAuth } = parseControlPlaneUrl(options.url);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const registration =
    basicAuth ??
    (options.registrationToken ? `Bearer ${options.registrationToken}` : undefined) ??
    (options.apiKey ? `Bearer ${options.apiKey}` : undefined);
  const dispatcher = options.fetch ? undefined : new Agent({ keepAliveTimeout: 4000 });
  const doFetch: FetchLike =
    options.fetch ??
    ((target, init) =>
      undiciFetch(target, { ...(init as object), dispatcher }) as unknown as Promise<Response>);

  async function post<T>(
    route: string,
    authorization: string | undefined,
    body: unknown,
    schema: TSchema,
    signal?: AbortSignal,
  ): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await doFetch(`${url}${route}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(authorization ? { authorization } : {}),
        },
        body: JSON.stringify(body),
        // A redirect would carry the token elsewhere or drop it: named, not followed.
        redirect: 'manual',
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      text = await response.text();
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new ControlPlaneError(`cannot reach ${url}: ${describeFailure(err, timeoutMs)}`, undefined, err);
    }
    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get('location') ?? 'elsewhere';
      throw new ControlPlaneError(
        `${response.status} redirect to ${location}: set CONTROL_PLANE_URL to the URL that answers`,
        response.status,
      );
    }
    if (response.status < 200 || response.status >= 300)
      throw new ControlPlaneError(describeAnswer(response.status, text), response.status);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new ControlPlaneError(`${response.status} answer is not JSON`, response.status);
    }
    if (!Value.Check(schema, value)) {
      const first = Value.Errors(schema, value)[0];
      throw new ControlPlaneError(
        `${response.status} answer does not fit (${first?.instancePath || '/'} ${first?.message ?? 'invalid'})`,
        response.status,
      );
    }
    return value as T;
  }

  return {
    url,
    register: (body, signal) =>
      post<RegisterAnswer>('/api/v1/nodes/register', registration, body, RegisterAnswer, signal),
    heartbeat: (node, body, signal) =>
      post<HeartbeatAnswer>(
        `/api/v1/nodes/${encodeURIComponent(node.node_id)}/heartbeat`,
        `Bearer ${node.node_token}`,
        body,
        HeartbeatAnswer,
        signal,
      ),
    async close() {
      await dispatcher?.close();
    },
  };
}
