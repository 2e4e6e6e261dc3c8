import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { AuthFailures } from '../../core/auth-failures.ts';
import { DockhandError, NotFoundError } from '../../core/errors.ts';

export interface AuthOptions {
  /** Every valid key (API_KEYS and ADMIN_API_KEYS); empty leaves every route open. */
  apiKeys: readonly string[];
  /** ADMIN_API_KEYS: keys that may act in Bull Board. Default none. */
  adminKeys?: readonly string[];
  /** Failed authentications per client address; without it they are not counted. */
  failures?: AuthFailures;
  /** NODE_REGISTRATION_TOKEN: lets a node agent register (and heartbeat) without an API key. */
  registrationToken?: string;
  /**
   * With neither API keys nor a registration token, may anyone register a node? Yes when the
   * gateway listens on loopback (as every other route is open there); beyond it, no.
   */
  openRegistration?: boolean;
  /** Checks a node's own token on `node-token` routes (the node is the route's `:id`). */
  checkNodeToken?: (nodeId: string, token: string) => Promise<'valid' | 'wrong' | 'unknown'>;
}

/**
 * How a route is guarded, set per route as `config: { auth }`; default `api-key`.
 * - `api-key`: one of API_KEYS (open when none is set).
 * - `node-registration`: an API key or NODE_REGISTRATION_TOKEN, as a bearer token or as the
 *   password of Basic auth (an agent that cannot set headers puts it in CONTROL_PLANE_URL).
 * - `node-token`: the node's own token, or a registration credential as above — an agent
 *   whose CONTROL_PLANE_URL carries credentials sends them on every request (Python requests
 *   puts them in place of any Authorization header), and whoever holds one may register the
 *   node again anyway. Always needs one of these, even when API keys are off.
 * - `sigv4`: passed on untouched; the route's own plugin verifies an AWS Signature V4
 *   (api/lambda/sigv4.ts), which needs the body this hook runs before.
 */
export type AuthRule = 'api-key' | 'node-registration' | 'node-token' | 'public' | 'sigv4';

/** Who a request authenticated as: never the key itself, only a digest of it. */
export interface Principal {
  /** The first 128 bits of the key's SHA-256, hex: the rate limit's bucket. */
  id: string;
  /** The key is one of ADMIN_API_KEYS. */
  admin: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook when the request presented a valid key. */
    principal?: Principal;
  }
  interface FastifyContextConfig {
    auth?: AuthRule;
  }
}

const sha256 = (value: string) => createHash('sha256').update(value).digest();

/** A key's stable, non-reversible name: what reaches Redis in its place. */
export const keyId = (key: string) => sha256(key).toString('hex').slice(0, 32);

/** The key a request presents: a bearer token, or the password of Basic auth so a browser can open Bull Board. */
export function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, value = ''] = header.split(' ', 2);
  if (scheme?.toLowerCase() === 'bearer') return value.trim();
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return decoded.slice(decoded.indexOf(':') + 1);
  }
  return undefined;
}

/**
 * Keys are kept only as SHA-256 digests and compared with timingSafeEqual: equal-length
 * digests make the comparison constant-time whatever the presented key's length, and every
 * stored key is compared so the timing does not reveal which one matched.
 */
export function createKeyChecker(apiKeys: readonly string[]) {
  const digests = apiKeys.map(sha256);
  return (key: string | undefined): boolean => {
    if (key === undefined) return false;
    const presented = sha256(key);
    let ok = false;
    for (const digest of digests) ok = timingSafeEqual(presented, digest) || ok;
    return ok;
  };
}

/** What probes and Prometheus reach without a key, and the rate limit never counts. */
export const PUBLIC_PATHS: readonly string[] = ['/health', '/ready', '/metrics'];

/** AWS Lambda's API (api/lambda/): its routes and its unknown paths are SigV4's. */
const LAMBDA_PATHS = /^\/(2015-03-31|2019-09-25)\//;

/** The request's path without its query: what PUBLIC_PATHS and the Basic-auth prompt look at. */
export const pathOf = (url: string) => url.split('?')[0] ?? '';

const MISSING: Record<Exclude<AuthRule, 'public' | 'sigv4'>, string> = {
  'api-key': 'Send an API key as Authorization: Bearer <key>.',
  'node-registration':
    'Send an API key or the registration token (NODE_REGISTRATION_TOKEN) as Authorization: Bearer <token>, or as the password of the control plane URL.',
  'node-token': 'Send the node token as Authorization: Bearer <node_token>.',
};
const WRONG: Record<Exclude<AuthRule, 'public' | 'sigv4'>, string> = {
  'api-key': 'The API key is not valid.',
  'node-registration': 'The API key or registration token is not valid.',
  'node-token': 'The token is not valid for this node; register again for a new one.',
};

export default fp<AuthOptions>(
  async (app: FastifyInstance, options) => {
    app.decorateRequest('principal', undefined);
    const keysOn = options.apiKeys.length > 0;
    if (!keysOn) {
      app.log.warn(
        'Authentication is off (API_KEYS is not set): every route is open to whoever can reach this address.',
      );
    }
    const check = createKeyChecker(options.apiKeys);
    const checkAdmin = createKeyChecker(options.adminKeys ?? []);
    const checkRegistration = createKeyChecker(options.registrationToken ? [options.registrationToken] : []);
    app.addHook('onRequest', async (request, reply) => {
      const path = pathOf(request.url);
      if (PUBLIC_PATHS.includes(path)) return;
      // An unknown path under Lambda's API is answered by its own scope, signature first.
      const rule = request.routeOptions.config?.auth ?? (LAMBDA_PATHS.test(path) ? 'sigv4' : 'api-key');
      if (rule === 'public' || rule === 'sigv4') return;
      if (rule === 'api-key' && !keysOn) return;
      if (rule === 'node-registration' && !keysOn && !options.registrationToken) {
        if (options.openRegistration) return;
        throw new DockhandError(
          'registration_closed',
          403,
          'Node registration is closed: this gateway listens beyond loopback without API_KEYS; set NODE_REGISTRATION_TOKEN and give it to the agents.',
        );
      }
      // Checked before the key, so that past the limit even a right key is refused: a guesser
      // cannot tell from the answer that a guess was right.
      const blockedMs = options.failures?.blockedFor(request.ip) ?? 0;
      if (blockedMs > 0) {
        const seconds = Math.ceil(blockedMs / 1000);
        reply.header('retry-after', String(seconds));
        throw new DockhandError(
          'rate_limited',
          429,
          `Too many failed authentications from this address; retry in ${seconds} seconds.`,
        );
      }
      const key = presentedKey(request);
      if (key !== undefined && rule === 'node-token' && options.checkNodeToken) {
        const nodeId = (request.params as { id?: string } | undefined)?.id ?? '';
        const verdict = await options.checkNodeToken(nodeId, key);
        if (verdict === 'valid') return;
        // Not a guess: the agent of a deleted or forgotten node, which a 404 sends to register
        // again. Answered before any other key is looked at, so that the same 404 comes whatever
        // was sent: a right API key going on to the route (and its 400 for a bad body) would make
        // this uncounted answer an oracle for API keys and the registration token.
        if (verdict === 'unknown') throw new NotFoundError(`No node ${nodeId}; register again.`);
      }
      if (key !== undefined && check(key)) {
        request.principal = { id: keyId(key), admin: checkAdmin(key) };
        return;
      }
      if (key !== undefined && rule !== 'api-key' && checkRegistration(key)) return;
      // A missing key is not a guess (a browser's first visit to Bull Board has none).
      if (key !== undefined) await options.failures?.record(request.ip);
      // Browsers only show a login prompt when asked for Basic; API clients ignore the header.
      if (path.startsWith('/admin') || path.startsWith('/docs')) {
        reply.header('www-authenticate', 'Basic realm="dockhand", charset="UTF-8"');
      }
      throw new DockhandError('unauthorized', 401, key === undefined ? MISSING[rule] : WRONG[rule]);
    });
  },
  { name: 'auth' },
);
