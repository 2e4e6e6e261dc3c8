import type { FastifyInstance, FastifyRequest } from 'fastify';
import type {
  EventInvokeConfig,
  EventInvokeConfigInput,
} from '../../processors/functions/event-invoke-config.ts';
import { invalidParameter, LambdaError } from './errors.ts';
import { fromDestination, functionArn, parseFunctionName, toDestination } from './mapping.ts';
import type { LambdaRouteDeps } from './plugin.ts';
import { EventInvokeConfigRequest, parseWith } from './shapes.ts';

/**
 * Lambda's Put/Get/Update/Delete/ListFunctionEventInvokeConfig(s), kept in Dockhand's
 * event-invoke-config store: what an Event invocation is retried by, how old its event may get
 * and where its outcome goes. The async path reads the same store.
 */
export default async function lambdaEventInvokeConfigRoutes(app: FastifyInstance, deps: LambdaRouteDeps) {
  const { region } = deps;
  const config = { auth: 'sigv4' as const };
  const schema = { hide: true };
  const parse = parseWith(EventInvokeConfigRequest);

  const existing = async (request: FastifyRequest) => {
    const params = request.params as { FunctionName: string };
    const query = request.query as { Qualifier?: string };
    const { name } = parseFunctionName(params.FunctionName, region, query.Qualifier);
    if (!(await deps.store.get(name)))
      throw new LambdaError(
        'ResourceNotFoundException',
        404,
        `Function not found: ${functionArn(region, name)}`,
      );
    return name;
  };

  const view = (name: string, c: EventInvokeConfig) => ({
    // A timestamp member: restJson1 sends it as epoch seconds.
    LastModified: Date.parse(c.lastModified) / 1000,
    FunctionArn: `${functionArn(region, name)}:$LATEST`,
    MaximumRetryAttempts: c.maximumRetryAttempts,
    MaximumEventAgeInSeconds: c.maximumEventAgeSeconds,
    DestinationConfig: {
      OnSuccess: c.onSuccess ? { Destination: fromDestination(c.onSuccess, region) } : {},
      OnFailure: c.onFailure ? { Destination: fromDestination(c.onFailure, region) } : {},
    },
  });

  const input = async (request: FastifyRequest): Promise<EventInvokeConfigInput> => {
    const body = parse(await deps.json(request));
    const onSuccess = body.DestinationConfig?.OnSuccess?.Destination;
    const onFailure = body.DestinationConfig?.OnFailure?.Destination;
    const destinations = {
      ...(onSuccess !== undefined ? { onSuccess: toDestination(onSuccess) } : {}),
      ...(onFailure !== undefined ? { onFailure: toDestination(onFailure) } : {}),
    };
    for (const destination of Object.values(destinations)) {
      const problem = await deps.checkDestination(destination);
      if (problem) throw invalidParameter(problem);
    }
    return {
      maximumRetryAttempts: body.MaximumRetryAttempts,
      maximumEventAgeSeconds: body.MaximumEventAgeInSeconds,
      ...destinations,
    };
  };

  const path = '/functions/:FunctionName/event-invoke-config';
  app.put(path, { config, schema }, async (request) => {
    const name = await existing(request);
    return view(name, await deps.eventInvokeConfig.put(name, await input(request)));
  });
  app.post(path, { config, schema }, async (request) => {
    const name = await existing(request);
    return view(name, await deps.eventInvokeConfig.update(name, await input(request)));
  });
  const get = async (name: string) => {
    const c = await deps.eventInvokeConfig.get(name);
    if (!c)
      throw new LambdaError(
        'ResourceNotFoundException',
        404,
        `The function ${functionArn(region, name)} doesn't have an EventInvokeConfig`,
      );
    return c;
  };
  app.get(path, { config, schema }, async (request) => {
    const name = await existing(request);
    return view(name, await get(name));
  });
  app.get(`${path}/list`, { config, schema }, async (request) => {
    const name = await existing(request);
    const c = await deps.eventInvokeConfig.get(name);
    return { FunctionEventInvokeConfigs: c ? [view(name, c)] : [] };
  });
  app.delete(path, { config, schema }, async (request, reply) => {
    const name = await existing(request);
    await get(name);
    await deps.eventInvokeConfig.remove(name);
    return reply.status(204).send();
  });
}
