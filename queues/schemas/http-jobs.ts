import { type Static, Type } from 'typebox';

export const HTTP_JOB_DEFAULT_TIMEOUT_MS = 10_000;
export const HTTP_JOB_MAX_TIMEOUT_MS = 60_000;

// typebox's Record drops additionalProperties, so it is added here: a header name that is
// not an HTTP token must be refused, not silently ignored by patternProperties.
const HeaderMap = {
  ...Type.Record(
    Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }),
    Type.String({ maxLength: 8192 }),
    {
      description: 'Request headers.',
    },
  ),
  additionalProperties: false,
} as ReturnType<typeof Type.Record<ReturnType<typeof Type.String>, ReturnType<typeof Type.String>>>;

/** What POST /jobs takes and what sits on the `http-jobs` queue (the seed's `{url}` still works). */
export const HttpJobPayload = Type.Object(
  {
    url: Type.String({
      format: 'uri',
      pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
      maxLength: 8192,
      description: 'An absolute http or https URL.',
      examples: ['http://127.0.0.1:8080/get'],
    }),
    method: Type.Optional(
      Type.Union(
        [
          Type.Literal('GET'),
          Type.Literal('HEAD'),
          Type.Literal('POST'),
          Type.Literal('PUT'),
          Type.Literal('PATCH'),
          Type.Literal('DELETE'),
          Type.Literal('OPTIONS'),
        ],
        { description: 'Default GET.' },
      ),
    ),
    headers: Type.Optional(HeaderMap),
    body: Type.Optional(Type.String({ maxLength: 1024 * 1024, description: 'Request body, sent as is.' })),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: HTTP_JOB_MAX_TIMEOUT_MS,
        description: `Whole-request deadline in ms across redirects. Default ${HTTP_JOB_DEFAULT_TIMEOUT_MS}.`,
      }),
    ),
  },
  { additionalProperties: false },
);
export type HttpJobPayload = Static<typeof HttpJobPayload>;

export const HttpJobResult = Type.Object(
  {
    statusCode: Type.Integer(),
    headers: Type.Record(Type.String(), Type.Union([Type.String(), Type.Array(Type.String())])),
    body: Type.String(),
    bodyEncoding: Type.Union([Type.Literal('utf8'), Type.Literal('base64')]),
    bodyBytes: Type.Integer({ description: 'Body bytes received; at most 1 MiB are kept.' }),
    truncated: Type.Boolean({ description: 'True when the body was longer than 1 MiB and cut.' }),
    durationMs: Type.Number(),
    url: Type.String({ description: 'The URL that answered, after redirects.' }),
    redirects: Type.Integer(),
  },
  {},
);
export type HttpJobResult = Static<typeof HttpJobResult>;
