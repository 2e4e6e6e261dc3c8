import { SignatureV4 } from '@smithy/signature-v4';
import t, { type Test } from 'tap';
import { NodeSha256 } from '../../api/lambda/sigv4.ts';
import { startRole } from '../../roles/index.ts';
import { testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { makeZip } from '../helpers/zip.ts';

// Every attack on the Lambda API we know of, each refused in Lambda's own error shape.
leakCheck(t);

const KEY = 'attack-test-key';
const captured: string[] = [];
const config = testConfig(t, { API_KEYS: KEY, AUTH_FAILURES_PER_MINUTE: '1000' });
const running = await startRole('gateway', config, {
  listen: false,
  // Every log call is kept (and nothing printed): no signature or secret may be in one.
  logger: {
    level: 'trace',
    hooks: {
      logMethod(args) {
        captured.push(JSON.stringify(args));
      },
    },
  },
});
t.teardown(() => running.close());
const { app } = running;

interface Req {
  method: string;
  url: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

/** Signs as the AWS SDK would, for inject()'s host. */
async function signed(req: Req, { key = KEY, secret = KEY, date = new Date() } = {}) {
  const [path = '', qs = ''] = req.url.split('?');
  const signer = new SignatureV4({
    service: 'lambda',
    region: 'us-east-1',
    credentials: { accessKeyId: key, secretAccessKey: secret },
    sha256: NodeSha256,
  });
  const out = await signer.sign(
    {
      method: req.method,
      protocol: 'http:',
      hostname: 'localhost',
      path,
      query: Object.fromEntries(new URLSearchParams(qs)),
      headers: { host: 'localhost:80', 'content-type': 'application/json', ...req.headers },
      body: req.body,
    },
    { signingDate: date },
  );
  return out.headers as Record<string, string>;
}

const send = (req: Req, headers: Record<string, string>) =>
  app.inject({ method: req.method as 'GET', url: req.url, headers, payload: req.body });

/** Lambda's error shape and nothing of Dockhand's. */
function lambdaError(t: Test, res: Awaited<ReturnType<typeof send>>, status: number, type: string) {
  t.equal(res.statusCode, status, res.body);
  t.equal(res.headers['x-amzn-errortype'], type);
  const body = res.json();
  t.type(body.message, 'string');
  t.notOk('error' in body, 'no Dockhand {error} field');
}

const list: Req = { method: 'GET', url: '/2015-03-31/functions/' };

t.test('who signs', async (t) => {
  lambdaError(t, await send(list, {}), 403, 'MissingAuthenticationTokenException');
  lambdaError(t, await send(list, { authorization: `Bearer ${KEY}` }), 403, 'IncompleteSignatureException');
  lambdaError(t, await send(list, await signed(list, { secret: 'wrong' })), 403, 'InvalidSignatureException');
  lambdaError(
    t,
    await send(list, await signed(list, { key: 'nobody', secret: 'nobody' })),
    403,
    'UnrecognizedClientException',
  );
  const ok = await send(list, await signed(list));
  t.equal(ok.statusCode, 200, ok.body);
  // And the other way round: a signature opens none of Dockhand's own routes.
  const own = await app.inject({
    method: 'GET',
    url: '/functions',
    headers: await signed({ method: 'GET', url: '/functions' }),
  });
  t.equal(own.statusCode, 401);
});

t.test('replayed and tampered requests', async (t) => {
  const old = await signed(list, { date: new Date(Date.now() - 20 * 60_000) });
  const replay = await send(list, old);
  lambdaError(t, replay, 403, 'InvalidSignatureException');
  t.match(replay.json().message, /Signature expired/);
  lambdaError(
    t,
    await send(list, await signed(list, { date: new Date(Date.now() + 20 * 60_000) })),
    403,
    'InvalidSignatureException',
  );

  const create: Req = {
    method: 'POST',
    url: '/2015-03-31/functions',
    body: JSON.stringify({
      FunctionName: 'f',
      Runtime: 'nodejs20.x',
      Handler: 'index.handler',
      Code: { ZipFile: 'AAAA' },
    }),
  };
  const headers = await signed(create);
  lambdaError(
    t,
    await send({ ...create, body: (create.body as string).replace('"f"', '"g"') }, headers),
    403,
    'InvalidSignatureException',
  );
  // A hash claimed in a signed header does not stand in for the body.
  const withHash = await signed({ ...create, headers: { 'x-amz-content-sha256': 'a'.repeat(64) } });
  lambdaError(t, await send({ ...create, body: '{"evil":1}' }, withHash), 403, 'InvalidSignatureException');

  const invoke: Req = {
    method: 'POST',
    url: '/2015-03-31/functions/a/invocations?Qualifier=%24LATEST',
    body: '{}',
  };
  const h = await signed(invoke);
  lambdaError(
    t,
    await send({ ...invoke, url: invoke.url.replace('/a/', '/b/') }, h),
    403,
    'InvalidSignatureException',
  );
  lambdaError(
    t,
    await send({ ...invoke, url: invoke.url.replace('%24LATEST', '1') }, h),
    403,
    'InvalidSignatureException',
  );
  // A header that steers the call, added after signing.
  lambdaError(
    t,
    await send(invoke, { ...h, 'x-amz-invocation-type': 'Event' }),
    403,
    'InvalidSignatureException',
  );
  lambdaError(t, await send(invoke, { ...h, 'x-amz-log-type': 'Tail' }), 403, 'InvalidSignatureException');
});

t.test('a signed %2B is not replayable as a raw + (which the route would read as a space)', async (t) => {
  const plus: Req = { method: 'GET', url: '/2015-03-31/functions/?Marker=a%2Bb' };
  const headers = await signed(plus);
  const honest = await send(plus, headers);
  t.not(
    honest.headers['x-amzn-errortype'],
    'InvalidSignatureException',
    `signed as sent: ${honest.statusCode}`,
  );
  lambdaError(
    t,
    await send({ ...plus, url: '/2015-03-31/functions/?Marker=a+b' }, headers),
    403,
    'InvalidSignatureException',
  );
  // A space the SDK encoded as %20 still verifies.
  const space: Req = { method: 'GET', url: '/2015-03-31/functions/?Marker=a%20b' };
  const spaced = await send(space, await signed(space));
  t.not(spaced.headers['x-amzn-errortype'], 'InvalidSignatureException', `a%20b: ${spaced.statusCode}`);
});

t.test('names: traversal and header injection', async (t) => {
  for (const name of ['..%2F..%2Fetc%2Fpasswd', 'a%0d%0aX-Injected%3A%201', 'a%00b']) {
    const req: Req = { method: 'GET', url: `/2015-03-31/functions/${name}` };
    const res = await send(req, await signed(req));
    lambdaError(t, res, 400, 'ValidationException');
    t.notOk(res.headers['x-injected'], 'no header injected');
    t.notMatch(res.body, /[\r\n]/);
  }
  for (const FunctionName of ['../x', 'a/b', 'x'.repeat(65)]) {
    const req: Req = {
      method: 'POST',
      url: '/2015-03-31/functions',
      body: JSON.stringify({
        FunctionName,
        Runtime: 'nodejs20.x',
        Handler: 'index.handler',
        Code: { ZipFile: 'AAAA' },
      }),
    };
    lambdaError(t, await send(req, await signed(req)), 400, 'ValidationException');
  }
  // A dot-dot segment is resolved before routing, so the path served is not the path signed.
  const dots: Req = { method: 'GET', url: '/2015-03-31/functions/%2e%2e' };
  lambdaError(t, await send(dots, await signed(dots)), 403, 'InvalidSignatureException');
  lambdaError(t, await send(dots, {}), 403, 'MissingAuthenticationTokenException');
  // A zip whose entry climbs out of the task directory.
  const zip = await makeZip([{ name: 'aa/index.js', content: 'x' }], { 'aa/index.js': '../index.js' });
  const slip: Req = {
    method: 'POST',
    url: '/2015-03-31/functions',
    body: JSON.stringify({
      FunctionName: 'slip',
      Runtime: 'nodejs20.x',
      Handler: 'index.handler',
      Code: { ZipFile: zip.toString('base64') },
    }),
  };
  lambdaError(t, await send(slip, await signed(slip)), 400, 'InvalidParameterValueException');
  const get: Req = { method: 'GET', url: '/2015-03-31/functions/slip' };
  lambdaError(t, await send(get, await signed(get)), 404, 'ResourceNotFoundException');
  const badHeader: Req = {
    method: 'POST',
    url: '/2015-03-31/functions/a/invocations',
    headers: { 'x-amz-invocation-type': 'Sideways' },
  };
  lambdaError(t, await send(badHeader, await signed(badHeader)), 400, 'ValidationException');
});

t.test('bodies: oversized, malformed, poisoned', async (t) => {
  // An unsigned upload is refused before its body is read.
  const huge = Buffer.alloc(71 * 1024 * 1024, 0x61);
  lambdaError(
    t,
    await send({ method: 'POST', url: '/2015-03-31/functions', body: huge }, {}),
    403,
    'MissingAuthenticationTokenException',
  );
  const big: Req = { method: 'POST', url: '/2015-03-31/functions', body: huge };
  lambdaError(t, await send(big, await signed(big)), 413, 'RequestTooLargeException');
  // Lambda's payload limits: 256 KB for Event, BODY_LIMIT_BYTES (6 MB) for a synchronous call.
  const event: Req = {
    method: 'POST',
    url: '/2015-03-31/functions/a/invocations',
    body: JSON.stringify({ x: 'y'.repeat(300 * 1024) }),
    headers: { 'x-amz-invocation-type': 'Event' },
  };
  lambdaError(t, await send(event, await signed(event)), 413, 'RequestTooLargeException');
  const sync: Req = {
    method: 'POST',
    url: '/2015-03-31/functions/a/invocations',
    body: JSON.stringify({ x: 'y'.repeat(7 * 1024 * 1024) }),
  };
  lambdaError(t, await send(sync, await signed(sync)), 413, 'RequestTooLargeException');
  for (const body of [
    '{not json',
    '{"__proto__": {"polluted": true}}',
    `${'['.repeat(100)}${']'.repeat(100)}`,
  ]) {
    const req: Req = { method: 'POST', url: '/2015-03-31/functions', body };
    lambdaError(t, await send(req, await signed(req)), 400, 'InvalidRequestContentException');
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  const notBase64: Req = {
    method: 'POST',
    url: '/2015-03-31/functions',
    body: JSON.stringify({
      FunctionName: 'b',
      Runtime: 'nodejs20.x',
      Handler: 'index.handler',
      Code: { ZipFile: 'not base64!' },
    }),
  };
  lambdaError(t, await send(notBase64, await signed(notBase64)), 400, 'InvalidParameterValueException');
});

t.test('unknown operations answer in Lambda’s shape too', async (t) => {
  const req: Req = { method: 'POST', url: '/2015-03-31/functions/a/versions' };
  lambdaError(t, await send(req, await signed(req)), 404, 'UnknownOperationException');
});

t.test('no signature or secret is ever logged', async (t) => {
  const req: Req = {
    method: 'GET',
    url: '/2015-03-31/functions/?X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKIDLEAK',
  };
  const headers = await signed(req);
  await send(req, headers);
  await send(list, await signed(list, { secret: 'wrong-secret-value' }));
  const all = captured.join('\n');
  const signature = /Signature=([0-9a-f]{64})/.exec(headers.authorization ?? '')?.[1] as string;
  t.ok(all.includes('/2015-03-31/functions/'), 'the requests were logged');
  for (const secret of [KEY, signature, 'deadbeefcafe', 'AKIDLEAK', 'wrong-secret-value'])
    t.notOk(all.includes(secret), `the log does not hold ${secret.slice(0, 6)}…`);
});

t.test('wrong signatures are counted per address, as wrong keys are', async (t) => {
  const strict = testConfig(t, {
    API_KEYS: KEY,
    AUTH_FAILURES_PER_MINUTE: '3',
    RATE_LIMIT_PER_MINUTE: '1000',
  });
  const gw = await startRole('gateway', strict, { listen: false });
  t.teardown(() => gw.close());
  const go = async (secret: string) =>
    gw.app.inject({ method: 'GET', url: list.url, headers: await signed(list, { secret }) });
  let last = await go('wrong');
  for (let i = 0; i < 5 && last.statusCode !== 429; i++) last = await go('wrong');
  lambdaError(t, last, 429, 'TooManyRequestsException');
  // Past the limit even the right secret is refused: a guesser cannot tell a right guess.
  lambdaError(t, await go(KEY), 429, 'TooManyRequestsException');
});

t.test('the rate limit applies, in Lambda’s shape', async (t) => {
  const limited = testConfig(t, { API_KEYS: KEY, RATE_LIMIT_PER_MINUTE: '2' });
  const gw = await startRole('gateway', limited, { listen: false });
  t.teardown(() => gw.close());
  let last = await gw.app.inject({ method: 'GET', url: list.url, headers: await signed(list) });
  for (let i = 0; i < 4 && last.statusCode !== 429; i++)
    last = await gw.app.inject({ method: 'GET', url: list.url, headers: await signed(list) });
  lambdaError(t, last, 429, 'TooManyRequestsException');
});
