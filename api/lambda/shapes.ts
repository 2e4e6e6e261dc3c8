import { type Static, type TSchema, Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { validationFailed } from './errors.ts';
import { printable } from './mapping.ts';

/**
 * The request bodies of Lambda's API that Dockhand reads, as Lambda's API reference gives them.
 * Fields Dockhand does not use (VpcConfig, TracingConfig, Tags…) are let through and ignored,
 * as an SDK of a newer version may send fields this list does not know.
 */

const EnvVars = Type.Record(Type.String({ pattern: '^[a-zA-Z][a-zA-Z0-9_]*$' }), Type.String(), {
  maxProperties: 1000,
});

export const Environment = Type.Object({ Variables: Type.Optional(EnvVars) });

export const Code = Type.Object({
  ZipFile: Type.Optional(Type.String({ description: 'The zip, base64.' })),
  S3Bucket: Type.Optional(Type.String({ minLength: 3, maxLength: 63 })),
  S3Key: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  S3ObjectVersion: Type.Optional(Type.String()),
  ImageUri: Type.Optional(Type.String()),
});

const Handler = Type.String({ minLength: 1, maxLength: 128 });
const Timeout = Type.Integer({ minimum: 1, maximum: 900 });
const MemorySize = Type.Integer({ minimum: 128, maximum: 10240 });
const Role = Type.String({ maxLength: 2048 });
const Description = Type.String({ maxLength: 256 });
const Runtime = Type.String({ minLength: 1, maxLength: 64 });
const Layers = Type.Array(Type.String());
const RevisionId = Type.String({ maxLength: 64 });

export const CreateFunctionRequest = Type.Object({
  FunctionName: Type.String({ minLength: 1, maxLength: 140 }),
  Runtime: Type.Optional(Runtime),
  Role: Type.Optional(Role),
  Handler: Type.Optional(Handler),
  Code,
  Description: Type.Optional(Description),
  Timeout: Type.Optional(Timeout),
  MemorySize: Type.Optional(MemorySize),
  Publish: Type.Optional(Type.Boolean()),
  PackageType: Type.Optional(Type.String()),
  Environment: Type.Optional(Environment),
  Layers: Type.Optional(Layers),
  Architectures: Type.Optional(Type.Array(Type.String(), { maxItems: 1 })),
  Tags: Type.Optional(Type.Record(Type.String(), Type.String())),
});
export type CreateFunctionRequest = Static<typeof CreateFunctionRequest>;

export const UpdateFunctionCodeRequest = Type.Object({
  ZipFile: Type.Optional(Type.String()),
  S3Bucket: Type.Optional(Type.String({ minLength: 3, maxLength: 63 })),
  S3Key: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  S3ObjectVersion: Type.Optional(Type.String()),
  ImageUri: Type.Optional(Type.String()),
  Publish: Type.Optional(Type.Boolean()),
  DryRun: Type.Optional(Type.Boolean()),
  RevisionId: Type.Optional(RevisionId),
  Architectures: Type.Optional(Type.Array(Type.String(), { maxItems: 1 })),
});
export type UpdateFunctionCodeRequest = Static<typeof UpdateFunctionCodeRequest>;

export const UpdateFunctionConfigurationRequest = Type.Object({
  Role: Type.Optional(Role),
  Handler: Type.Optional(Handler),
  Description: Type.Optional(Description),
  Timeout: Type.Optional(Timeout),
  MemorySize: Type.Optional(MemorySize),
  Environment: Type.Optional(Environment),
  Runtime: Type.Optional(Runtime),
  RevisionId: Type.Optional(RevisionId),
  Layers: Type.Optional(Layers),
});
export type UpdateFunctionConfigurationRequest = Static<typeof UpdateFunctionConfigurationRequest>;

const OnOutcome = Type.Object({ Destination: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })) });

export const EventInvokeConfigRequest = Type.Object({
  MaximumRetryAttempts: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 })),
  MaximumEventAgeInSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 21600 })),
  DestinationConfig: Type.Optional(
    Type.Object({ OnSuccess: Type.Optional(OnOutcome), OnFailure: Type.Optional(OnOutcome) }),
  ),
});
export type EventInvokeConfigRequest = Static<typeof EventInvokeConfigRequest>;

/** Path parameters of every function route: a name, partial ARN or ARN (mapping.ts parses it). */
export const FunctionNameParams = Type.Object({
  FunctionName: Type.String({ minLength: 1, maxLength: 170 }),
});

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/**
 * Checks a parsed body against a schema; the first problem becomes Lambda's ValidationException
 * sentence (`Value … at 'memorySize' failed to satisfy constraint: …`).
 */
export function parseWith<T extends TSchema>(schema: T) {
  const check = Compile(schema);
  return (value: unknown): Static<T> => {
    if (check.Check(value)) return value as Static<T>;
    const first = check.Errors(value)[0];
    const pointer = first?.instancePath ?? '';
    const field = pointer.split('/').filter(Boolean).map(lowerFirst).join('.') || 'body';
    const got = pointer
      .split('/')
      .filter(Boolean)
      .reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], value);
    const shown = typeof got === 'string' || typeof got === 'number' ? printable(String(got)) : typeof got;
    throw validationFailed(
      `1 validation error detected: Value '${shown}' at '${printable(field)}' failed to satisfy constraint: ${first?.message ?? 'Member must be valid'}`,
    );
  };
}
