import { type Static, type TSchema, Type } from 'typebox';

/*
 * The Exec Agent's request and response (../shared/seeds/001_…), field for field, so its
 * clients keep working; Dockhand's additions are marked "Extension" in their descriptions.
 * Limits that depend on configuration (timeout, memory, sizes) are checked by the processor
 * and the route against Config, not here.
 */

export const EXEC_DEFAULT_TIMEOUT_SECONDS = 300;
export const EXEC_DEFAULT_WORKING_DIR = '/workspace';

// A path under input/ or output/. Absolute paths, `..`, NUL and the rest are refused by
// processors/exec/workspace-input.ts, whose message names the file and why.
const RelativePath = (description: string) => Type.String({ minLength: 1, maxLength: 1024, description });

const EnvName = '^[A-Za-z_][A-Za-z0-9_]*$';

// typebox's Record drops additionalProperties, so it is added back: a key that does not match
// the pattern must be refused, not silently ignored by patternProperties.
const closed = <T extends TSchema>(record: T): T => ({ ...record, additionalProperties: false }) as T;

export const ExecContainer = Type.Object(
  {
    image: Type.String({
      minLength: 1,
      maxLength: 512,
      pattern: '^[A-Za-z0-9][A-Za-z0-9._/:@-]*$',
      description: 'An image on the engine (or pullable from a registry), e.g. python:3.12-slim.',
      examples: ['alpine:latest'],
    }),
    command: Type.Optional(
      Type.Union(
        [
          Type.Array(Type.String({ maxLength: 256 * 1024 }), { minItems: 1, maxItems: 1024 }),
          Type.String({ minLength: 1, maxLength: 256 * 1024 }),
        ],
        {
          description:
            "The command, as an argv array (a string is split as a POSIX shell would split words, without running a shell). Default: the image's own CMD.",
        },
      ),
    ),
    working_dir: Type.Optional(
      Type.String({
        pattern: '^/[^\\x00]*$',
        maxLength: 1024,
        description: `Absolute working directory. Default ${EXEC_DEFAULT_WORKING_DIR}.`,
      }),
    ),
    ports: Type.Optional(
      closed(
        Type.Record(
          Type.String({ pattern: '^[0-9]{1,5}(/(tcp|udp))?$' }),
          Type.Union([
            Type.String({ pattern: '^[0-9]{1,5}$' }),
            Type.Integer({ minimum: 1, maximum: 65535 }),
          ]),
          { description: 'Container port → host port; published on 127.0.0.1 only.' },
        ),
      ),
    ),
  },
  { additionalProperties: false },
);

export const ExecInputFile = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 255,
      description: 'The file name (also its path when path is absent).',
    }),
    path: Type.Optional(RelativePath('Where under /workspace/input/ the file is written. Default: name.')),
    content: Type.String({ description: 'The file content, UTF-8 text unless encoding says base64.' }),
    encoding: Type.Optional(
      Type.Union([Type.Literal('utf8'), Type.Literal('base64')], { description: 'Extension. Default utf8.' }),
    ),
  },
  { additionalProperties: false },
);

export const ExecMinioObject = Type.Object(
  {
    object_name: Type.String({ minLength: 1, maxLength: 1024, description: 'Object key in MINIO_BUCKET.' }),
    local_path: RelativePath('Where under /workspace/input/ the object is written.'),
  },
  { additionalProperties: false },
);

export const ExecInput = Type.Object(
  {
    graph_data: Type.Optional(Type.Unknown({ description: 'Written to /workspace/input/graph_data.json.' })),
    minio_objects: Type.Optional(Type.Array(ExecMinioObject, { maxItems: 1000 })),
    files: Type.Optional(Type.Array(ExecInputFile, { maxItems: 1000 })),
    config_data: Type.Optional(Type.Unknown({ description: 'Written to /workspace/config/config.json.' })),
  },
  { additionalProperties: false },
);

export const ExecOutputSpec = Type.Object(
  {
    expected_files: Type.Optional(
      Type.Array(RelativePath('A file under /workspace/output/ to return.'), { maxItems: 1000 }),
    ),
    minio_upload: Type.Optional(
      Type.Boolean({ description: 'Upload all of output/ to executions/<execution_id>/output/.' }),
    ),
    graph_update: Type.Optional(
      Type.Boolean({ description: 'Return output/graph_update.json as result.graph_update.' }),
    ),
    return_logs: Type.Optional(
      Type.Boolean({ description: 'Return stdout and stderr (capped) as result.logs.' }),
    ),
  },
  { additionalProperties: false },
);

/** What `POST /exec`, the `exec-requests` channel and `dockhand enqueue exec` take. */
export const ExecRequest = Type.Object(
  {
    correlation_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: "The caller's id, returned in the response. Generated when absent.",
      }),
    ),
    container: ExecContainer,
    input: Type.Optional(ExecInput),
    output: Type.Optional(ExecOutputSpec),
    environment: Type.Optional(
      closed(
        Type.Record(Type.String({ pattern: EnvName }), Type.String({ maxLength: 128 * 1024 }), {
          description: 'Environment variables for the command.',
        }),
      ),
    ),
    timeout: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        description: `Seconds before the container is killed. Default ${EXEC_DEFAULT_TIMEOUT_SECONDS}; at most EXEC_MAX_TIMEOUT_SECONDS.`,
      }),
    ),
    service_access: Type.Optional(
      Type.Array(Type.Union([Type.Literal('data'), Type.Literal('ai')]), {
        maxItems: 2,
        uniqueItems: true,
        description: 'Services the container may reach through the service proxy.',
      }),
    ),
    priority: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 2_097_152,
        description:
          "Extension: BullMQ priority, 1 first; requests without one go before any with one (BullMQ's rule).",
      }),
    ),
    resources: Type.Optional(
      Type.Object(
        {
          memory_mb: Type.Optional(Type.Integer({ minimum: 16, description: 'At most EXEC_MAX_MEMORY_MB.' })),
          cpus: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'At most EXEC_MAX_CPUS.' })),
        },
        { additionalProperties: false, description: 'Extension: limits for this execution.' },
      ),
    ),
  },
  // The old agent ignored fields it did not know; so does Dockhand at the top level only.
  { additionalProperties: true },
);
export type ExecRequest = Static<typeof ExecRequest>;

/** What sits on the `exec` queue: the request and the id it runs under. */
export const ExecJobPayload = Type.Object(
  {
    execution_id: Type.String({ minLength: 1, maxLength: 128 }),
    correlation_id: Type.String({ minLength: 1, maxLength: 256 }),
    request: ExecRequest,
    /** Where it came from, for logs and metrics. */
    source: Type.Union([Type.Literal('http'), Type.Literal('bridge'), Type.Literal('cli')]),
  },
  { additionalProperties: false },
);
export type ExecJobPayload = Static<typeof ExecJobPayload>;

export const ExecOutputFile = Type.Object({
  name: Type.String(),
  path: Type.String({ description: 'Its path in the container, /workspace/output/<name>.' }),
  content: Type.String(),
  size: Type.Integer({ description: 'Bytes on disk.' }),
  encoding: Type.Optional(
    Type.Union([Type.Literal('utf8'), Type.Literal('base64')], {
      description: 'Extension: base64 when the file is not valid UTF-8.',
    }),
  ),
});

export const ExecMetadata = Type.Object(
  {
    execution_time: Type.String({ description: 'e.g. "5.2s", as the Exec Agent wrote it.' }),
    execution_time_ms: Type.Optional(Type.Number({ description: 'Extension.' })),
    image: Type.Optional(Type.String()),
    warm: Type.Optional(
      Type.Boolean({ description: 'Extension: ran in a container started ahead of need.' }),
    ),
    peak_memory_mb: Type.Optional(Type.Number({ description: 'Extension: peak memory of the container.' })),
    cpu_percent: Type.Optional(Type.Number({ description: 'Extension: average CPU use over the run.' })),
    missing_files: Type.Optional(
      Type.Array(Type.String(), { description: 'Extension: expected files not found.' }),
    ),
    logs_truncated: Type.Optional(
      Type.Boolean({ description: 'Extension: output past EXEC_MAX_LOG_BYTES was dropped.' }),
    ),
    timed_out: Type.Optional(Type.Boolean()),
    cancelled: Type.Optional(Type.Boolean()),
    oom_killed: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true },
);

export const ExecResult = Type.Object({
  exit_code: Type.Union([Type.Integer(), Type.Null()], { description: 'null when the command never ran.' }),
  output: Type.String({ description: "The command's stdout and stderr." }),
  logs: Type.String({ description: 'The same, when output.return_logs asked for it; else empty.' }),
  graph_update: Type.Union([Type.Unknown(), Type.Null()]),
  output_files: Type.Array(ExecOutputFile),
  minio_objects: Type.Array(Type.Object({ object_name: Type.String(), size: Type.Integer() })),
  metadata: ExecMetadata,
});

/** The Exec Agent response: what `GET /exec/:id`, `?wait=true` and `exec-responses` carry. */
export const ExecResponse = Type.Object({
  correlation_id: Type.String(),
  success: Type.Boolean(),
  result: Type.Optional(ExecResult),
  error: Type.Optional(Type.String({ description: 'One sentence, when success is false.' })),
  status: Type.Optional(
    Type.Union(
      [Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('timeout'), Type.Literal('cancelled')],
      { description: 'Extension: how it ended.' },
    ),
  ),
  timestamp: Type.String({ description: 'ISO 8601, when it finished.' }),
  duration: Type.String({ description: 'e.g. "5.2s".' }),
  execution_id: Type.String(),
});
export type ExecResponse = Static<typeof ExecResponse>;
