import { createHash } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import t from 'tap';
import { LambdaError, toLambdaError } from '../../api/lambda/errors.ts';
import { errorPayload, LOG_TAIL_BYTES, logTail } from '../../api/lambda/invoke-route.ts';
import {
  dockhandRuntime,
  fromDestination,
  lambdaRuntime,
  parseFunctionName,
  toDestination,
} from '../../api/lambda/mapping.ts';
import { NodeSha256, parseAuthorization, verifySignature } from '../../api/lambda/sigv4.ts';
import {
  ConflictError,
  DependencyUnavailableError,
  NotFoundError,
  ValidationError,
} from '../../core/errors.ts';
import type { FunctionRecord } from '../../processors/functions/function-store.ts';
import type { InvocationResult } from '../../queues/schemas/functions.ts';

t.test('Lambda runtimes map to Dockhand runtimes', async (t) => {
  const table: Array<[string, string | undefined]> = [
    ['nodejs20.x', 'node20'],
    ['nodejs22.x', 'node20'],
    ['python3.9', 'python3'],
    ['python3.12', 'python3'],
    ['python3.13', 'python3'],
    ['provided', 'provided'],
    ['provided.al2', 'provided'],
    ['provided.al2023', 'provided'],
    ['nodejs16.x', undefined],
    ['python3.8', undefined],
    ['python3.14', undefined],
    ['java21', undefined],
    ['provided.al2024', undefined],
    ['', undefined],
  ];
  for (const [lambda, dockhand] of table) t.equal(dockhandRuntime(lambda), dockhand, lambda);
  t.equal(lambdaRuntime('node20'), 'nodejs20.x');
  t.equal(lambdaRuntime('python3'), 'python3.11');
  t.equal(lambdaRuntime('provided'), 'provided.al2023');
});

t.test('FunctionName: name, partial ARN, ARN, qualifiers', async (t) => {
  t.same(parseFunctionName('fn', 'us-east-1'), { name: 'fn' });
  t.same(parseFunctionName('fn:$LATEST', 'us-east-1'), { name: 'fn', qualifier: '$LATEST' });
  t.same(parseFunctionName('123456789012:function:fn', 'us-east-1'), { name: 'fn' });
  t.same(parseFunctionName('arn:aws:lambda:eu-west-1:123456789012:function:fn', 'us-east-1'), { name: 'fn' });
  t.same(parseFunctionName('fn', 'us-east-1', '$LATEST'), { name: 'fn', qualifier: '$LATEST' });
  const refused = (raw: string, qualifier?: string) => {
    try {
      parseFunctionName(raw, 'us-east-1', qualifier);
    } catch (err) {
      return err as LambdaError;
    }
    throw new Error(`${raw} was taken`);
  };
  t.match(refused('fn:1'), { type: 'ResourceNotFoundException', statusCode: 404 });
  t.match(refused('fn', 'prod'), { type: 'ResourceNotFoundException' });
  t.match(refused('fn:$LATEST', 'prod'), { type: 'InvalidParameterValueException' });
  for (const bad of [
    '../etc',
    'a/b',
    'a\r\nX-Injected: 1',
    '',
    'arn:aws:s3:::bucket',
    'x'.repeat(65),
    '-lead',
  ])
    t.match(refused(bad), { type: 'ValidationException', statusCode: 400 }, JSON.stringify(bad));
  // What a refusal echoes carries no control character into a header or a log.
  t.notMatch(refused('a\r\nX-Injected: 1').message, /[\r\n]/);
});

t.test('destinations: Lambda ARNs ↔ Dockhand destinations', async (t) => {
  t.same(toDestination('arn:aws:lambda:us-east-1:123456789012:function:next'), {
    type: 'function',
    name: 'next',
  });
  t.same(toDestination('arn:aws:sns:us-east-1:123456789012:my-topic'), {
    type: 'channel',
    channel: 'my-topic',
  });
  t.same(toDestination('https://example.com/hook?a=1'), {
    type: 'http',
    url: 'https://example.com/hook?a=1',
  });
  for (const bad of [
    'arn:aws:sqs:us-east-1:123456789012:q',
    'arn:aws:events:us-east-1:123456789012:event-bus/default',
    'arn:aws:lambda:us-east-1:123456789012:function:../x',
    'arn:aws:sns:us-east-1:123456789012:a b',
    'ftp://example.com/x',
    'file:///etc/passwd',
    'javascript:alert(1)',
  ])
    t.match(
      (() => {
        try {
          toDestination(bad);
        } catch (err) {
          return err;
        }
      })(),
      { type: 'InvalidParameterValueException' },
      bad,
    );
  t.equal(
    fromDestination({ type: 'function', name: 'next' }, 'eu-west-1'),
    'arn:aws:lambda:eu-west-1:000000000000:function:next',
  );
  t.equal(
    fromDestination({ type: 'channel', channel: 't' }, 'eu-west-1'),
    'arn:aws:sns:eu-west-1:000000000000:t',
  );
  t.equal(fromDestination({ type: 'http', url: 'https://x.test/' }, 'eu-west-1'), 'https://x.test/');
});

t.test("Dockhand's errors become Lambda's", async (t) => {
  const ready = () => true;
  t.match(toLambdaError(new NotFoundError('x'), ready), {
    type: 'ResourceNotFoundException',
    statusCode: 404,
  });
  t.match(toLambdaError(new ValidationError('f', 'bad'), ready), {
    type: 'InvalidParameterValueException',
    statusCode: 400,
  });
  t.match(toLambdaError(new ConflictError('taken'), ready), {
    type: 'ResourceConflictException',
    statusCode: 409,
  });
  t.match(toLambdaError(new DependencyUnavailableError('down'), ready), {
    type: 'ServiceException',
    statusCode: 503,
  });
  t.match(toLambdaError(new Error('secret detail'), ready), {
    type: 'ServiceException',
    statusCode: 500,
    message: /unexpected/,
  });
  t.same(new LambdaError('ResourceNotFoundException', 404, 'm').body(), { Type: 'User', message: 'm' });
  t.same(new LambdaError('ServiceException', 500, 'm').body(), { Type: 'Service', message: 'm' });
});

const result = (over: Partial<InvocationResult>): InvocationResult => ({
  requestId: 'req-1',
  functionName: 'f',
  status: 'SUCCESS',
  durationMs: 12.3,
  result: null,
  logs: '',
  resources: { memoryUsedMb: 40, cpuUsagePercent: 1, networkRxBytes: 0, networkTxBytes: 0 },
  autoTuner: {
    recommendation: '',
    recommendationMb: 128,
    savings: 0,
    monthlySavingsUsd: 0,
    pattern: '',
    tip: '',
  },
  coldStart: false,
  ...over,
});
const record = (runtime: string) => ({ runtime, timeoutMs: 3000, memoryMb: 128 }) as FunctionRecord;

t.test('log tail: START … REPORT, the last 4 KB, base64', async (t) => {
  const short = Buffer.from(logTail(result({ logs: 'hello\n' }), 128), 'base64').toString();
  t.match(
    short,
    /^START RequestId: req-1 Version: \$LATEST\nhello\nEND RequestId: req-1\nREPORT RequestId: req-1\tDuration: 12\.30 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\t\n$/,
  );
  const long = Buffer.from(logTail(result({ logs: 'x'.repeat(10_000) }), 128), 'base64');
  t.equal(long.length, LOG_TAIL_BYTES);
  t.match(long.toString(), /REPORT RequestId: req-1/);
});

t.test('error payloads in each runtime’s shape', async (t) => {
  const error = {
    errorType: 'TypeError',
    errorMessage: 'x is not a function',
    stack: 'TypeError: x\n    at f (/tmp/task/index.js:1:1)\n',
  };
  t.same(errorPayload(result({ status: 'FAILED', error }), record('node20')), {
    errorType: 'TypeError',
    errorMessage: 'x is not a function',
    trace: ['TypeError: x', '    at f (/tmp/task/index.js:1:1)'],
  });
  t.match(errorPayload(result({ status: 'FAILED', error }), record('python3')), {
    errorMessage: 'x is not a function',
    errorType: 'TypeError',
    requestId: 'req-1',
    stackTrace: Array,
  });
  t.same(errorPayload(result({ status: 'TIMEOUT' }), record('node20')), {
    errorType: 'Sandbox.Timedout',
    errorMessage: 'RequestId: req-1 Error: Task timed out after 3.00 seconds',
  });
  t.match(errorPayload(result({ status: 'FAILED', error }), record('provided')), { stackTrace: Array });
});

const SECRET = 'secret-key';
const NOW = Date.parse('2026-06-01T12:00:00Z');

async function sign(
  req: {
    method: string;
    path: string;
    query?: Record<string, string>;
    headers?: Record<string, string>;
    body?: string;
  },
  { date = new Date(NOW), secret = SECRET, region = 'us-east-1' } = {},
) {
  const signer = new SignatureV4({
    service: 'lambda',
    region,
    credentials: { accessKeyId: 'AKID', secretAccessKey: secret },
    sha256: NodeSha256,
  });
  const signed = await signer.sign(
    {
      method: req.method,
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 3000,
      path: req.path,
      query: req.query ?? {},
      headers: { host: '127.0.0.1:3000', ...req.headers },
      body: req.body,
    },
    { signingDate: date },
  );
  return signed.headers as Record<string, string>;
}

const lower = (h: Record<string, string>) =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));

t.test('SigV4: what the SDK signs verifies; anything changed does not', async (t) => {
  const body = '{"a":1}';
  // The SDK percent-encodes the path once ($ → %24); the signer encodes it again.
  const path =
    '/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Afn/invocations';
  const headers = lower(
    await sign({
      method: 'POST',
      path,
      query: { Qualifier: '$LATEST', odd: 'a b+c' },
      headers: { 'content-type': 'application/json', 'x-amz-invocation-type': 'Event' },
      body,
    }),
  );
  const rawUrl = `${path}?Qualifier=%24LATEST&odd=a%20b%2Bc`;
  const auth = parseAuthorization(headers, NOW);
  t.match(auth, { accessKeyId: 'AKID', region: 'us-east-1' });
  const credential = { accessKeyId: 'AKID', secretAccessKey: SECRET };
  const verify = (over: Partial<Parameters<typeof verifySignature>[0]>, cred = credential) =>
    verifySignature({ method: 'POST', rawUrl, headers, body: Buffer.from(body), ...over }, auth, cred);
  t.equal(await verify({}), true, 'as sent');
  t.equal(await verify({}, { ...credential, secretAccessKey: 'other' }), false, 'another secret');
  t.equal(await verify({ body: Buffer.from('{"a":2}') }), false, 'another body');
  t.equal(await verify({ method: 'PUT' }), false, 'another method');
  t.equal(await verify({ rawUrl: rawUrl.replace('%3Afn/', '%3Afx/') }), false, 'another function');
  t.equal(await verify({ rawUrl: rawUrl.replace('%24LATEST', '1') }), false, 'another query');
  t.equal(
    await verify({ headers: { ...headers, 'x-amz-invocation-type': 'RequestResponse' } }),
    false,
    'a signed header changed',
  );
  // A payload hash claimed in a signed header must be the body's own.
  const claimed = lower(
    await sign({
      method: 'POST',
      path,
      headers: { 'x-amz-content-sha256': createHash('sha256').update(body).digest('hex') },
      body,
    }),
  );
  const claimedAuth = parseAuthorization(claimed, NOW);
  const verifyClaimed = (b: string) =>
    verifySignature(
      { method: 'POST', rawUrl: path, headers: claimed, body: Buffer.from(b) },
      claimedAuth,
      credential,
    );
  t.equal(await verifyClaimed(body), true);
  t.equal(await verifyClaimed('{"evil":1}'), false, 'a swapped body under a claimed hash');
});

t.test('SigV4: refused before any secret is looked at', async (t) => {
  const ok = lower(await sign({ method: 'GET', path: '/2015-03-31/functions/' }));
  const refuse = (headers: Record<string, string>, now = NOW) => {
    try {
      parseAuthorization(headers, now);
    } catch (err) {
      return err as LambdaError;
    }
    throw new Error('taken');
  };
  t.match(refuse({}), { type: 'MissingAuthenticationTokenException', statusCode: 403 });
  t.match(refuse({ ...ok, authorization: 'Bearer key' }), { type: 'IncompleteSignatureException' });
  t.match(refuse(ok, NOW + 16 * 60_000), { type: 'InvalidSignatureException', message: /Signature expired/ });
  t.match(refuse(ok, NOW - 16 * 60_000), { type: 'InvalidSignatureException', message: /not yet current/ });
  t.match(refuse({ ...ok, 'x-amz-date': '20260601T120000' }), { type: 'IncompleteSignatureException' });
  t.match(refuse({ ...ok, 'x-amz-date': '20260602T120000Z' }), { message: /valid date/ });
  t.match(refuse({ ...ok, authorization: ok.authorization?.replace('/lambda/', '/s3/') as string }), {
    message: /'lambda'/,
  });
  t.match(refuse({ ...ok, 'x-amz-invocation-type': 'Event' }), {
    type: 'InvalidSignatureException',
    message: /not signed: x-amz-invocation-type/,
  });
  t.ok(parseAuthorization(ok, NOW + 14 * 60_000), 'within 15 minutes');
});
