import type { LookupAddress, LookupOptions } from 'node:dns';
import dns from 'node:dns';
import { Agent, request, errors as undiciErrors } from 'undici';
import type { AddressPolicy } from './address-policy.ts';
import { AddressRefusedError, FetchTimeoutError } from './errors.ts';

export interface FetchRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

export interface FetchResult {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: string;
  /** utf8 for textual content types, base64 for anything else. */
  bodyEncoding: 'utf8' | 'base64';
  /** Bytes of body received (at most maxBodyBytes). */
  bodyBytes: number;
  truncated: boolean;
  durationMs: number;
  /** The URL that answered, after redirects. */
  url: string;
  redirects: number;
}

export interface SafeFetchOptions {
  policy: AddressPolicy;
  /** Bytes of body kept; the rest is not downloaded. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Redirect hops followed, each checked like the first URL. Default 5. */
  maxRedirects?: number;
  /** Injected resolver for tests ("a name that resolves to loopback"). Default dns.lookup. */
  lookup?: typeof dns.lookup;
}

const TEXTUAL = /^(text\/|application\/([\w.+-]*\+)?(json|xml|javascript|x-www-form-urlencoded)|image\/svg)/i;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * An HTTP client that refuses what the address policy refuses, checked on the address
 * the socket actually connects to (so DNS rebinding between check and connect cannot
 * slip through) and again on every redirect hop.
 */
export function createSafeFetch(options: SafeFetchOptions) {
  const { policy } = options;
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const maxRedirects = options.maxRedirects ?? 5;
  const resolve = options.lookup ?? dns.lookup;

  // net.connect calls this instead of dns.lookup; every address a name resolves to must pass,
  // so a name with one public and one private record cannot be used to reach the private one.
  const guardedLookup = (hostname: string, opts: LookupOptions, callback: LookupCallback) => {
    resolve(hostname, { ...opts, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as LookupAddress[];
      try {
        if (list.length === 0) throw new AddressRefusedError(`${hostname} did not resolve to any address.`);
        for (const a of list) policy.checkAddress(a.address, hostname);
      } catch (refusal) {
        return callback(refusal as NodeJS.ErrnoException, []);
      }
      if (opts.all) return callback(null, list);
      const first = list[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
  const dispatcher = new Agent({ connect: { lookup: guardedLookup as never }, keepAliveTimeout: 4000 });

  async function fetchOnce(req: FetchRequest, onProgress?: (fraction: number) => void): Promise<FetchResult> {
    const started = performance.now();
    const signal = AbortSignal.timeout(req.timeoutMs);
    let url = new URL(req.url);
    let method = req.method.toUpperCase();
    let body = req.body;
    let headers = { ...req.headers };
    for (let hop = 0; ; hop++) {
      policy.checkUrl(url);
      let res: Awaited<ReturnType<typeof request>>;
      try {
        res = await request(url, { method: method as never, headers, body, dispatcher, signal });
      } catch (err) {
        throw unwrap(err, signal, req.timeoutMs);
      }
      const location = res.headers.location;
      if (REDIRECTS.has(res.statusCode) && typeof location === 'string') {
        await res.body.dump();
        if (hop >= maxRedirects) throw new Error(`Stopped after ${maxRedirects} redirects at ${url.href}.`);
        const next = new URL(location, url);
        if (next.origin !== url.origin) {
          // As browsers do: credentials are for the origin they were given to.
          headers = Object.fromEntries(
            Object.entries(headers).filter(([k]) => !/^(authorization|cookie|proxy-authorization)$/i.test(k)),
          );
        }
        if (
          res.statusCode === 303 ||
          ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')
        ) {
          method = 'GET';
          body = undefined;
        }
        url = next;
        continue;
      }
      onProgress?.(0.5);
      const expected = Number(res.headers['content-length']) || 0;
      const chunks: Buffer[] = [];
      let kept = 0;
      let truncated = false;
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          const room = maxBodyBytes - kept;
          if (chunk.length > room) {
            chunks.push(chunk.subarray(0, room));
            kept += room;
            truncated = true;
            break;
          }
          chunks.push(chunk);
          kept += chunk.length;
          if (expected > 0) onProgress?.(0.5 + 0.5 * Math.min(1, kept / expected));
        }
      } catch (err) {
        throw unwrap(err, signal, req.timeoutMs);
      } finally {
        // Leaving the loop early must not keep the socket downloading the rest.
        if (truncated) res.body.destroy();
      }
      const buffer = Buffer.concat(chunks);
      const contentType = String(res.headers['content-type'] ?? '');
      const textual = contentType === '' || TEXTUAL.test(contentType);
      return {
        statusCode: res.statusCode,
        headers: res.headers as Record<string, string | string[]>,
        body: buffer.toString(textual ? 'utf8' : 'base64'),
        bodyEncoding: textual ? 'utf8' : 'base64',
        bodyBytes: kept,
        truncated,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
        url: url.href,
        redirects: hop,
      };
    }
  }

  return Object.assign(fetchOnce, { close: () => dispatcher.close() });
}

export type SafeFetch = ReturnType<typeof createSafeFetch>;

function unwrap(err: unknown, signal: AbortSignal, timeoutMs: number): Error {
  if (signal.aborted) return new FetchTimeoutError(timeoutMs);
  let current: unknown = err;
  // undici may wrap the connector's error; the refusal inside is what the user needs to see.
  for (let depth = 0; current && depth < 4; depth++) {
    if (current instanceof AddressRefusedError) return current;
    current = (current as { cause?: unknown }).cause;
  }
  if (err instanceof undiciErrors.UndiciError) return new Error(`${err.message} (${err.code})`);
  return err instanceof Error ? err : new Error(String(err));
}
