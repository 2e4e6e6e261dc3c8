import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { FunctionConfig, FunctionRecord } from '../../processors/functions/function-store.ts';
import { RUNTIME_NAMES, type RuntimeName } from '../../runtimes/catalog.ts';
import { MASKED } from '../routes/functions.ts';
import { CODE_REQUEST_LIMIT, resolveLambdaCode } from './code.ts';
import { invalidParameter, LambdaError, validationFailed } from './errors.ts';
import { dockhandRuntime, functionArn, parseFunctionName, printable } from './mapping.ts';
import type { LambdaRouteDeps } from './plugin.ts';
import {
  CreateFunctionRequest,
  parseWith,
  UpdateFunctionCodeRequest,
  UpdateFunctionConfigurationRequest,
} from './shapes.ts';
import { functionConfiguration } from './views.ts';

const HANDLER = /^[A-Za-z0-9_./-]+\.[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Variables Lambda sets itself and refuses in Environment (and so does Dockhand, for the same runtimes). */
export const RESERVED_ENV = new Set([
  '_HANDLER',
  '_X_AMZN_TRACE_ID',
  'AWS_DEFAULT_REGION',
  'AWS_REGION',
  'AWS_EXECUTION_ENV',
  'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  'AWS_LAMBDA_FUNCTION_VERSION',
  'AWS_LAMBDA_INITIALIZATION_TYPE',
  'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME',
  'AWS_ACCESS_KEY',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_LAMBDA_RUNTIME_API',
  'LAMBDA_TASK_ROOT',
  'LAMBDA_RUNTIME_DIR',
]);

/** Lambda's 4 KB bound on all variables together. */
const MAX_ENV_BYTES = 4096;

function checkEnv(vars: Record<string, string>) {
  const reserved = Object.keys(vars).filter((k) => RESERVED_ENV.has(k));
  if (reserved.length)
    throw invalidParameter(
      `Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: ${reserved.join(',')}`,
    );
  const size = Object.entries(vars).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (size > MAX_ENV_BYTES)
    throw invalidParameter(
      'Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit.',
    );
  return vars;
}

/** The Dockhand runtime and handler a Lambda Runtime and Handler run as. */
function runtimeAndHandler(runtime: string | undefined, handler: string | undefined) {
  if (runtime === undefined) throw invalidParameter('Runtime is required for a Zip package.');
  const mapped = dockhandRuntime(runtime);
  if (!mapped || !(RUNTIME_NAMES as readonly string[]).includes(mapped))
    throw invalidParameter(
      `The runtime parameter of ${printable(runtime)} is not supported by this Dockhand: it runs nodejs20.x, nodejs22.x, python3.9 to python3.13${(RUNTIME_NAMES as readonly string[]).includes('provided') ? ', provided, provided.al2 and provided.al2023' : ''}.`,
    );
  const custom = mapped === 'provided';
  if (handler === undefined && !custom) throw invalidParameter('Handler is required for this runtime.');
  if (handler !== undefined && !custom && !HANDLER.test(handler))
    throw validationFailed(
      `1 validation error detected: Value '${printable(handler)}' at 'handler' failed to satisfy constraint: Member must be file.function (index.handler, lambda_function.lambda_handler)`,
    );
  // An OS-only runtime runs `bootstrap` whatever the Handler says; the bootstrap reads it (_HANDLER).
  const dockhandHandler = handler !== undefined && HANDLER.test(handler) ? handler : 'bootstrap.handler';
  return { runtime: mapped as RuntimeName, handler: dockhandHandler, lambdaHandler: handler };
}

const notFound = (region: string, name: string) =>
  new LambdaError('ResourceNotFoundException', 404, `Function not found: ${functionArn(region, name)}`);

function checkRevision(record: FunctionRecord, revisionId: string | undefined) {
  if (revisionId !== undefined && revisionId !== record.version)
    throw new LambdaError(
      'PreconditionFailedException',
      412,
      'The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id',
    );
}

function refuseLayers(layers: string[] | undefined) {
  if (layers?.length)
    throw invalidParameter('Layers are not supported by Dockhand: include the code in the zip.');
}

export default async function lambdaFunctionRoutes(app: FastifyInstance, deps: LambdaRouteDeps) {
  const { region } = deps;
  const codeLimit = Math.max(deps.bodyLimitBytes, CODE_REQUEST_LIMIT);
  const config = { auth: 'sigv4' as const };
  const hide = { hide: true };
  const nameOf = (request: FastifyRequest) => {
    const params = request.params as { FunctionName: string };
    const query = request.query as { Qualifier?: string };
    return parseFunctionName(params.FunctionName, region, query.Qualifier).name;
  };
  const recordOf = async (request: FastifyRequest) => {
    const name = nameOf(request);
    const record = await deps.store.get(name);
    if (!record) throw notFound(region, name);
    return record;
  };
  const view = (request: FastifyRequest, record: FunctionRecord) =>
    functionConfiguration(record, region, { admin: request.principal?.admin === true });
  const parseCreate = parseWith(CreateFunctionRequest);
  const parseUpdateCode = parseWith(UpdateFunctionCodeRequest);
  const parseUpdateConfig = parseWith(UpdateFunctionConfigurationRequest);

  // CreateFunction
  app.post('/functions', { config, bodyLimit: codeLimit, schema: hide }, async (request, reply) => {
    const body = parseCreate(await deps.json(request));
    const { name } = parseFunctionName(body.FunctionName, region);
    if (body.PackageType !== undefined && body.PackageType !== 'Zip')
      throw invalidParameter('Dockhand runs Zip packages only (PackageType Zip).');
    if (body.Architectures?.[0] !== undefined && body.Architectures[0] !== 'x86_64')
      throw invalidParameter(
        `Dockhand runs x86_64 only: architecture ${printable(body.Architectures[0])} is not supported.`,
      );
    refuseLayers(body.Layers);
    const { runtime, handler, lambdaHandler } = runtimeAndHandler(body.Runtime, body.Handler);
    const env = checkEnv(body.Environment?.Variables ?? {});
    if (await deps.store.get(name))
      throw new LambdaError('ResourceConflictException', 409, `Function already exist: ${name}`);
    const code = await resolveLambdaCode(body.Code, deps.s3Code);
    const fnConfig: FunctionConfig = {
      runtime,
      handler,
      memoryMb: body.MemorySize ?? 128,
      timeoutMs: (body.Timeout ?? 3) * 1000,
      env,
      // Lambda has no such field; a tag asks for Dockhand's guarded egress network.
      network: body.Tags?.['dockhand:network'] === 'egress' ? 'egress' : 'none',
      concurrency: 10,
      lambda: {
        runtime: body.Runtime as string,
        ...(lambdaHandler !== handler && lambdaHandler !== undefined ? { handler: lambdaHandler } : {}),
        ...(body.Role !== undefined ? { role: body.Role } : {}),
        ...(body.Description !== undefined ? { description: body.Description } : {}),
        codeSha256: code.codeSha256,
        codeSize: code.codeSize,
      },
    };
    const { record } = await deps.store.put(name, fnConfig, code.bundle);
    return reply.status(201).send(view(request, record));
  });

  // ListFunctions (the SDKs ask for /functions/, with the slash)
  const list = async (request: FastifyRequest) => {
    const query = request.query as { Marker?: string; MaxItems?: string };
    const max = query.MaxItems === undefined ? 50 : Number(query.MaxItems);
    if (!Number.isInteger(max) || max < 1 || max > 10000)
      throw validationFailed(
        `1 validation error detected: Value '${printable(String(query.MaxItems))}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000`,
      );
    const after =
      query.Marker === undefined ? undefined : Buffer.from(query.Marker, 'base64url').toString('utf8');
    const all = (await deps.store.list()).filter((r) => after === undefined || r.name > after);
    const page = all.slice(0, max);
    const last = page.at(-1);
    return {
      Functions: page.map((r) => view(request, r)),
      ...(all.length > max && last ? { NextMarker: Buffer.from(last.name).toString('base64url') } : {}),
    };
  };
  app.get('/functions', { config, schema: hide }, list);
  app.get('/functions/', { config, schema: hide }, list);

  // GetFunction
  app.get('/functions/:FunctionName', { config, schema: hide }, async (request) => {
    const record = await recordOf(request);
    return {
      Configuration: view(request, record),
      // Dockhand keeps the unpacked files, not the zip: the location says where, for the operator.
      Code: { RepositoryType: 'Dockhand', Location: record.codeLocation },
    };
  });

  // GetFunctionConfiguration
  app.get('/functions/:FunctionName/configuration', { config, schema: hide }, async (request) =>
    view(request, await recordOf(request)),
  );

  // UpdateFunctionCode
  app.put(
    '/functions/:FunctionName/code',
    { config, bodyLimit: codeLimit, schema: hide },
    async (request) => {
      const body = parseUpdateCode(await deps.json(request));
      const record = await recordOf(request);
      checkRevision(record, body.RevisionId);
      const code = await resolveLambdaCode(body, deps.s3Code);
      if (body.DryRun) return view(request, record);
      const { name, version, codeSha256, codeSize, codeLocation, lastModified, ...current } = record;
      const { record: updated } = await deps.store.put(
        name,
        {
          ...current,
          lambda: {
            runtime: record.lambda?.runtime ?? functionConfiguration(record, region).Runtime,
            ...record.lambda,
            codeSha256: code.codeSha256,
            codeSize: code.codeSize,
          },
        },
        code.bundle,
      );
      return view(request, updated);
    },
  );

  // UpdateFunctionConfiguration: fields left out keep their values, as in Lambda.
  app.put('/functions/:FunctionName/configuration', { config, schema: hide }, async (request) => {
    const body = parseUpdateConfig(await deps.json(request));
    const record = await recordOf(request);
    checkRevision(record, body.RevisionId);
    refuseLayers(body.Layers);
    const before = functionConfiguration(record, region);
    const { runtime, handler, lambdaHandler } = runtimeAndHandler(
      body.Runtime ?? before.Runtime,
      body.Handler ?? before.Handler,
    );
    // Environment replaces every variable; a value sent back as `***` (what a non-admin reads)
    // keeps the stored one, so a read-modify-write never writes the mask.
    const env =
      body.Environment === undefined
        ? record.env
        : checkEnv(
            Object.fromEntries(
              Object.entries(body.Environment.Variables ?? {}).map(([k, v]) => [
                k,
                v === MASKED && record.env[k] !== undefined ? record.env[k] : v,
              ]),
            ),
          );
    const bundle = await deps.store.bundle(record);
    const { name, version, codeSha256, codeSize, codeLocation, lastModified, lambda, ...current } = record;
    const { record: updated } = await deps.store.put(
      name,
      {
        ...current,
        runtime,
        handler,
        memoryMb: body.MemorySize ?? record.memoryMb,
        timeoutMs: body.Timeout !== undefined ? body.Timeout * 1000 : record.timeoutMs,
        env,
        lambda: {
          runtime: body.Runtime ?? before.Runtime,
          ...(lambdaHandler !== handler && lambdaHandler !== undefined ? { handler: lambdaHandler } : {}),
          ...((body.Role ?? lambda?.role) !== undefined ? { role: body.Role ?? lambda?.role } : {}),
          ...((body.Description ?? lambda?.description) !== undefined
            ? { description: body.Description ?? lambda?.description }
            : {}),
          codeSha256: before.CodeSha256,
          codeSize: before.CodeSize,
        },
      },
      bundle,
    );
    return view(request, updated);
  });

  // DeleteFunction
  app.delete('/functions/:FunctionName', { config, schema: hide }, async (request, reply) => {
    const name = nameOf(request);
    if (!(await deps.store.remove(name))) throw notFound(region, name);
    await deps.history.clear(name);
    await deps.eventInvokeConfig.remove(name);
    return reply.status(204).send();
  });
}
