import { type Static, Type } from 'typebox';

export const LlmProvider = Type.Union([Type.Literal('openai'), Type.Literal('gemini')], {
  description: 'openai or gemini',
});
export type LlmProvider = Static<typeof LlmProvider>;

/** `json` and `text` are the Exec Agent's words; the object forms are OpenAI's, passed on as they are. */
export const ResponseFormat = Type.Union(
  [
    Type.Literal('json'),
    Type.Literal('text'),
    Type.Object({ type: Type.Union([Type.Literal('text'), Type.Literal('json_object')]) }),
    Type.Object({
      type: Type.Literal('json_schema'),
      json_schema: Type.Object(
        {
          name: Type.String({ minLength: 1, maxLength: 64 }),
          schema: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
          strict: Type.Optional(Type.Boolean()),
          description: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    }),
  ],
  { description: 'json, text, or an OpenAI response_format object' },
);
export type ResponseFormat = Static<typeof ResponseFormat>;

/** POST /ai/query: the Exec Agent's AI request, answered by one chat completion. */
export const AiQuery = Type.Object(
  {
    provider: Type.Optional(LlmProvider),
    prompt: Type.String({ minLength: 1, description: 'The user message.' }),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    system: Type.Optional(Type.String({ description: 'A system message sent before the prompt.' })),
    response_format: Type.Optional(ResponseFormat),
    max_tokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
  },
  { additionalProperties: false },
);
export type AiQuery = Static<typeof AiQuery>;

export const AiAnswer = Type.Object({
  provider: LlmProvider,
  model: Type.String({ description: 'The model that answered, as the provider names it.' }),
  content: Type.Unknown({
    description: 'The answer: parsed JSON when format is json, else the text.',
  }),
  format: Type.Union([Type.Literal('json'), Type.Literal('text')], {
    description: 'json when JSON was asked for and the answer parsed as JSON.',
  }),
  finish_reason: Type.Union([Type.String(), Type.Null()]),
  usage: Type.Union([
    Type.Object({
      prompt_tokens: Type.Integer(),
      completion_tokens: Type.Integer(),
      total_tokens: Type.Integer(),
    }),
    Type.Null(),
  ]),
});
export type AiAnswer = Static<typeof AiAnswer>;

export const ProxyHealth = Type.Object({
  status: Type.Literal('ok'),
  services: Type.Object({
    data: Type.Object({ configured: Type.Boolean() }),
    ai: Type.Object({
      configured: Type.Boolean(),
      provider: Type.Optional(LlmProvider),
      model: Type.Optional(Type.String()),
      providers: Type.Object({ openai: Type.Boolean(), gemini: Type.Boolean() }),
    }),
  }),
});
export type ProxyHealth = Static<typeof ProxyHealth>;
