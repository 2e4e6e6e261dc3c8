import { createHash, createHmac, type Hash, type Hmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { LambdaError } from './errors.ts';

/**
 * AWS Signature Version 4, checked the way AWS checks it: the signature is computed again from
 * the request as received (method, path, query, the headers it names, the body's SHA-256) with
 * the secret of its access key id, and compared in constant time. Only the `Authorization`
 * header form is taken (no presigned query strings).
 */

/** How far a request's X-Amz-Date may be from the server's clock, either way (AWS: 15 minutes). */
export const MAX_SKEW_MS = 15 * 60 * 1000;

export interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface ParsedAuthorization {
  accessKeyId: string;
  region: string;
  signedHeaders: string[];
  signature: string;
  signingDate: Date;
}

export const missingToken = () =>
  new LambdaError('MissingAuthenticationTokenException', 403, 'Missing Authentication Token');

export const unknownKey = () =>
  new LambdaError(
    'UnrecognizedClientException',
    403,
    'The security token included in the request is invalid.',
  );

export const badSignature = () =>
  new LambdaError(
    'InvalidSignatureException',
    403,
    'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
  );

const incomplete = (what: string) =>
  new LambdaError('IncompleteSignatureException', 403, `Authorization header requires ${what}.`);

const amzDate = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');

function parseAmzDate(value: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value ?? '');
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  const date = new Date(Date.UTC(y as number, (mo as number) - 1, d, h, mi, s));
  return Number.isNaN(date.getTime()) || amzDate(date) !== value ? undefined : date;
}

const single = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(',') : value);

/**
 * Reads the Authorization header without any secret: what can be refused before the body is
 * read (no signature at all, a malformed one, a date outside the window, another service's).
 */
export function parseAuthorization(headers: IncomingHttpHeaders, now = Date.now()): ParsedAuthorization {
  const header = single(headers.authorization);
  if (!header) throw missingToken();
  const m = /^AWS4-HMAC-SHA256 +(.*)$/s.exec(header);
  if (!m)
    throw incomplete("the algorithm AWS4-HMAC-SHA256 and 'Credential', 'SignedHeaders' and 'Signature'");
  const fields = new Map<string, string>();
  for (const part of (m[1] as string).split(',')) {
    const at = part.indexOf('=');
    if (at > 0) fields.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!credential || !signedHeaders || !signature)
    throw incomplete("'Credential', 'SignedHeaders' and 'Signature' parameters");
  const [accessKeyId, scopeDate, region, service, terminal, ...rest] = credential.split('/');
  if (!accessKeyId || !scopeDate || !region || !service || terminal !== 'aws4_request' || rest.length)
    throw incomplete('a Credential of the form <key id>/<date>/<region>/<service>/aws4_request');
  if (service !== 'lambda')
    throw new LambdaError(
      'InvalidSignatureException',
      403,
      `Credential should be scoped to correct service: 'lambda'.`,
    );
  if (!/^[a-z0-9-]{1,32}$/.test(region))
    throw new LambdaError('InvalidSignatureException', 403, 'Credential should be scoped to a valid region.');
  const names = signedHeaders.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date') || names.some((n) => !/^[a-z0-9-]+$/.test(n)))
    throw new LambdaError(
      'InvalidSignatureException',
      403,
      "SignedHeaders must name 'host' and 'x-amz-date'.",
    );
  if (!/^[0-9a-f]{64}$/.test(signature)) throw badSignature();
  // An x-amz-* header steers the call (X-Amz-Invocation-Type, X-Amz-Log-Type): one added after
  // signing would change what a captured request does.
  const unsigned = Object.keys(headers).filter((h) => h.startsWith('x-amz-') && !names.includes(h));
  if (unsigned.length)
    throw new LambdaError(
      'InvalidSignatureException',
      403,
      `There were headers present in the request which were not signed: ${unsigned.join(', ').slice(0, 256)}`,
    );
  const dateHeader = single(headers['x-amz-date']);
  const signingDate = parseAmzDate(dateHeader);
  if (!signingDate)
    throw new LambdaError('IncompleteSignatureException', 403, 'X-Amz-Date is missing or malformed.');
  if (scopeDate !== dateHeader?.slice(0, 8))
    throw new LambdaError('InvalidSignatureException', 403, 'Credential should be scoped to a valid date.');
  if (signingDate.getTime() < now - MAX_SKEW_MS)
    throw new LambdaError(
      'InvalidSignatureException',
      403,
      `Signature expired: ${dateHeader} is now earlier than ${amzDate(new Date(now - MAX_SKEW_MS))} (${amzDate(new Date(now))} - 15 min.)`,
    );
  if (signingDate.getTime() > now + MAX_SKEW_MS)
    throw new LambdaError(
      'InvalidSignatureException',
      403,
      `Signature not yet current: ${dateHeader} is still later than ${amzDate(new Date(now + MAX_SKEW_MS))} (${amzDate(new Date(now))} + 15 min.)`,
    );
  return { accessKeyId, region, signedHeaders: names, signature, signingDate };
}

type Data = string | ArrayBuffer | ArrayBufferView;
const bytes = (data: Data) =>
  typeof data === 'string'
    ? Buffer.from(data, 'utf8')
    : ArrayBuffer.isView(data)
      ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      : Buffer.from(data);

/** The hash the signer is given: node:crypto behind smithy's Checksum interface. */
export class NodeSha256 {
  private hash: Hash | Hmac;
  private readonly secret?: Data;
  constructor(secret?: Data) {
    this.secret = secret;
    this.hash = this.fresh();
  }
  private fresh() {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(this.secret));
  }
  update(data: Data) {
    this.hash.update(bytes(data));
  }
  async digest() {
    return new Uint8Array(this.hash.digest());
  }
  reset() {
    this.hash = this.fresh();
  }
}

/**
 * The query decoded as the route will read it (Fastify takes a raw `+` for a space): what is
 * verified must be what is acted on, or `?Marker=a%2Bb`, signed, could be replayed as `a+b`.
 * The SDKs encode both (`%2B`, `%20`), so a signed request never carries a raw `+` meaning plus.
 */
function parseQuery(search: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  const decode = (part: string) => decodeURIComponent(part.replaceAll('+', ' '));
  for (const pair of search.split('&')) {
    if (pair === '') continue;
    const at = pair.indexOf('=');
    const key = decode(at < 0 ? pair : pair.slice(0, at));
    const value = at < 0 ? '' : decode(pair.slice(at + 1));
    const had = query[key];
    query[key] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
  return query;
}

export interface ReceivedRequest {
  method: string;
  /** The request target as it came on the wire (still percent-encoded): what the client signed. */
  rawUrl: string;
  headers: IncomingHttpHeaders;
  body: Buffer | undefined;
}

/**
 * True when the signature is the one `credential` makes for this request. A claimed payload
 * hash (x-amz-content-sha256) must be the body's own: the signature covers the claim, not the
 * body, so a mismatch would let a body be swapped under a valid signature.
 */
export async function verifySignature(
  request: ReceivedRequest,
  auth: ParsedAuthorization,
  credential: Credential,
): Promise<boolean> {
  const body = request.body ?? Buffer.alloc(0);
  const bodyHash = createHash('sha256').update(body).digest('hex');
  const claimed = single(request.headers['x-amz-content-sha256']);
  if (claimed !== undefined && claimed !== bodyHash) return false;
  const at = request.rawUrl.indexOf('?');
  const path = at < 0 ? request.rawUrl : request.rawUrl.slice(0, at);
  let query: Record<string, string | string[]>;
  try {
    query = parseQuery(at < 0 ? '' : request.rawUrl.slice(at + 1));
  } catch {
    return false; // a malformed escape was not signed by any SDK
  }
  const headers: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    const value = single(request.headers[name]);
    if (value === undefined) return false;
    headers[name] = value;
  }
  const signer = new SignatureV4({
    service: 'lambda',
    region: auth.region,
    credentials: credential,
    sha256: NodeSha256,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    { method: request.method, protocol: 'http:', hostname: headers.host ?? '', path, query, headers, body },
    { signingDate: auth.signingDate, signableHeaders: new Set(auth.signedHeaders) },
  );
  const expected = /Signature=([0-9a-f]{64})$/.exec(String(signed.headers.authorization))?.[1] ?? '';
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(auth.signature, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Finds the credential of an access key id, comparing digests in constant time against every
 * entry: when API keys sign as their own key id, the key id is itself a secret.
 */
export function credentialFinder(credentials: readonly Credential[]) {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  const entries = credentials.map((c) => ({ digest: digest(c.accessKeyId), credential: c }));
  return (accessKeyId: string): Credential | undefined => {
    const presented = digest(accessKeyId);
    let found: Credential | undefined;
    for (const e of entries) if (timingSafeEqual(presented, e.digest)) found ??= e.credential;
    return found;
  };
}
