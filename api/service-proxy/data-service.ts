import { Readable } from 'node:stream';
import { UpstreamError, UpstreamTimeoutError } from '../../core/errors.ts';

export interface DataAnswer {
  status: number;
  contentType: string;
  /** The data service's body, streamed through as it arrives. */
  body: Readable | undefined;
}

export interface DataService {
  configured: boolean;
  /** Sends one query (a JSON text, as the container sent it). Throws UpstreamTimeoutError or UpstreamError. */
  query(json: string, signal?: AbortSignal): Promise<DataAnswer>;
}

/**
 * Where a query goes: DATA_SERVICE_URL plus `/query` when the URL names only a host (the
 * Exec Agent's data abstractor answered POST /query), else the URL exactly as given, so an
 * operator whose service answers elsewhere names the full path.
 */
export function dataQueryUrl(base: string): string {
  const url = new URL(base);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/query';
  return url.toString();
}

/**
 * The data half of the service proxy: a pass-through. Only the body and a JSON content type go
 * upstream (none of the container's headers); the data service's status, content type and body
 * come back as they are. The time limit covers the whole exchange: a body still streaming when
 * it passes is cut off.
 */
export function createDataService({ url, timeoutMs }: { url?: string; timeoutMs: number }): DataService {
  const { target, authorization } = url ? splitCredentials(dataQueryUrl(url)) : {};
  // Named without credentials or path: a message to a container never carries either.
  const where = url ? new URL(url).host : '';
  return {
    configured: target !== undefined,
    async query(json, signal) {
      if (!target) throw new Error('the data service is not configured');
      const timeout = AbortSignal.timeout(timeoutMs);
      let response: Response;
      try {
        response = await fetch(target, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json',
            ...(authorization && { authorization }),
          },
          body: json,
          redirect: 'manual',
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
      } catch (err) {
        if (timeout.aborted) throw new UpstreamTimeoutError('data', timeoutMs);
        if (signal?.aborted) throw new UpstreamError('The data request was cancelled.');
        throw new UpstreamError(`The data service at ${where} could not be reached (${causeCode(err)}).`);
      }
      return {
        status: response.status,
        contentType: response.headers.get('content-type') ?? 'application/json',
        body: response.body
          ? Readable.fromWeb(response.body as import('node:stream/web').ReadableStream)
          : undefined,
      };
    },
  };
}

/** fetch refuses a URL with credentials in it: they go as Basic authentication instead. */
function splitCredentials(url: string): { target: string; authorization?: string } {
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return { target: url };
  const pair = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
  parsed.username = '';
  parsed.password = '';
  return { target: parsed.toString(), authorization: `Basic ${Buffer.from(pair).toString('base64')}` };
}

function causeCode(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' ? cause.code : 'no answer';
}
