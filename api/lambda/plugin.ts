import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthFailures } from '../../core/auth-failures.ts';
import type { Destination, EventInvokeConfigStore } from '../../processors/functions/event-invoke-config.ts';
import type { FunctionStore } from '../../processors/functions/function-store.ts';
import type { S3CodeReader } from '../../processors/functions/s3-code-source.ts';
import type { TuningHistory } from '../../processors/functions/tuning-history.ts';
import type { InvokeDeps } from '../functions/invoke.ts';
import { keyId } from '../plugins/auth.ts';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../plugins/json-body.ts';
import { LambdaError, toLambdaError } from './errors.ts';
import lambdaEventInvokeConfigRoutes from './event-invoke-config-routes.ts';
import lambdaFunctionRoutes from './function-routes.ts';
import lambdaInvokeRoute from './invoke-route.ts';
import {
  badSignature,
  type Credential,
  credentialFinder,
  type ParsedAuthorization,
  parseAuthorization,
  unknownKey,
  verifySignature,
} from './sigv4.ts';

export interface LambdaApiOptions {
  store: FunctionStore;
  history: TuningHistory;
  s3Code: S3CodeReader;
  eventInvokeConfig: EventInvokeConfigStore;
  /** Why a destination cannot be used (a refused URL, a channel of Dockhand's own): the same check as Dockhand's route. */
  checkDestination: (destination: Destination) => Promise<string | undefined>;
  invoke: InvokeDeps;
  /** AWS_REGION: the region in every ARN answered. Requests signed for any region are taken. */
  region: string;
  /**
   * Who may call: LAMBDA_CREDENTIALS when set, else each API key as its own access key id and
   * secret. Empty (neither set) leaves the Lambda API open, as Dockhand's own is.
   */
  credentials: readonly Credential[];
  /** ADMIN_API_KEYS: an access key id among them reads environment values. */
  adminKeys: readonly string[];
  /** Wrong signatures counted per client address, as wrong API keys are. */
  failures?: AuthFailures;
  /** BODY_LIMIT_BYTES: every Lambda route's limit but the code uploads' (code.ts). */
  bodyLimitBytes: number;
  redisReady: () => boolean;
}

/** What each Lambda route file is given: the options and the body reader. */
export interface LambdaRouteDeps extends LambdaApiOptions {
  /** The request's body as JSON, after its signature was verified; a failure is `errorType` (400). */
  json(request: FastifyRequest, errorType?: string): Promise<unknown>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The parsed SigV4 Authorization of a Lambda request, until its signature is verified. */
    sigv4?: ParsedAuthorization;
  }
}

/**
 * AWS Lambda's REST API (restJson1), for the AWS SDKs and CLI pointed at Dockhand: functions
 * under /2015-03-31, event-invoke-config under /2019-09-25. Its own scope: bodies kept as
 * bytes (the signature covers them), SigV4 instead of bearer keys, and Lambda's error shape
 * instead of Dockhand's.
 */
export default async function lambdaApi(app: FastifyInstance, options: LambdaApiOptions) {
  const open = options.credentials.length === 0;
  const findCredential = credentialFinder(options.credentials);
  const isAdmin = credentialFinder(options.adminKeys.map((k) => ({ accessKeyId: k, secretAccessKey: k })));

  // Every body as bytes: the signature is over them, and Invoke's payload is any bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  const parseJson = app.getDefaultJsonParser('error', 'error');

  app.decorateRequest('sigv4', undefined);
  // Before the body is read: a request with no signature, an unknown key or a stale date
  // never gets to upload 70 MB.
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-amzn-requestid', randomUUID());
    if (open) return;
    const blockedMs = options.failures?.blockedFor(request.ip) ?? 0;
    if (blockedMs > 0) {
      reply.header('retry-after', String(Math.ceil(blockedMs / 1000)));
      throw new LambdaError(
        'TooManyRequestsException',
        429,
        'Too many failed authentications from this address.',
        {
          Reason: 'CallerRateLimitExceeded',
        },
      );
    }
    const auth = parseAuthorization(request.headers);
    if (!findCredential(auth.accessKeyId)) {
      await options.failures?.record(request.ip);
      throw unknownKey();
    }
    request.sigv4 = auth;
  });
  app.addHook('preHandler', async (request) => {
    if (open) return;
    const auth = request.sigv4 as ParsedAuthorization;
    const credential = findCredential(auth.accessKeyId) as Credential;
    const ok = await verifySignature(
      {
        method: request.method,
        rawUrl: request.raw.url ?? request.url,
        headers: request.headers,
        body: Buffer.isBuffer(request.body) ? request.body : undefined,
      },
      auth,
      credential,
    );
    if (!ok) {
      await options.failures?.record(request.ip);
      throw badSignature();
    }
    request.principal = { id: keyId(auth.accessKeyId), admin: isAdmin(auth.accessKeyId) !== undefined };
  });

  app.setErrorHandler((error, request, reply) => {
    const lambda = toLambdaError(error, options.redisReady);
    if (lambda.statusCode >= 500) request.log.error({ err: error }, 'lambda request failed');
    return reply
      .status(lambda.statusCode)
      .header('x-amzn-errortype', lambda.type)
      .header('content-type', 'application/json')
      .send(JSON.stringify(lambda.body()));
  });

  const deps: LambdaRouteDeps = {
    ...options,
    json: (request, errorType = 'InvalidRequestContentException') =>
      new Promise((resolve, reject) => {
        const body = request.body;
        const text = Buffer.isBuffer(body) ? body.toString('utf8') : '';
        const refuse = (why: string) =>
          reject(new LambdaError(errorType, 400, `Could not parse request body into json: ${why}`));
        if (text === '') return refuse('the body is empty.');
        if (jsonDepthExceeds(text)) return refuse(`nested deeper than ${MAX_JSON_DEPTH} levels.`);
        parseJson(request, text, (err, value) => (err ? refuse('not valid JSON.') : resolve(value)));
      }),
  };
  const notFound = (request: FastifyRequest) => {
    throw new LambdaError(
      'UnknownOperationException',
      404,
      `Dockhand does not implement ${request.method} ${request.url.split('?')[0]} of the Lambda API.`,
    );
  };
  await app.register(
    async (scope) => {
      scope.setNotFoundHandler(notFound);
      await lambdaFunctionRoutes(scope, deps);
      await lambdaInvokeRoute(scope, deps);
    },
    { prefix: '/2015-03-31' },
  );
  await app.register(
    async (scope) => {
      scope.setNotFoundHandler(notFound);
      await lambdaEventInvokeConfigRoutes(scope, deps);
    },
    { prefix: '/2019-09-25' },
  );
}
