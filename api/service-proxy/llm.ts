import OpenAI from 'openai';
import type { Config } from '../../core/config.ts';
import { ServiceNotConfiguredError, UpstreamError, UpstreamTimeoutError } from '../../core/errors.ts';
import type { AiAnswer, AiQuery, LlmProvider } from '../schemas/service-proxy.ts';

/** Gemini's OpenAI-compatible endpoint: one client library for both providers. */
export const GEMINI_BASE_URL = 'https://generativelanguage.googleapis.com/v1beta/openai/';
const OPENAI_BASE_URL = 'https://api.openai.com/v1';
/** Used when neither the request nor OPENAI_MODEL / GOOGLE_MODEL names one. */
export const DEFAULT_MODELS: Record<LlmProvider, string> = {
  openai: 'gpt-4o-mini',
  gemini: 'gemini-2.0-flash',
};

export interface LlmOptions {
  llm: Config['llm'];
  /** Per call; one attempt (no SDK retries: they would multiply the limit, and the caller may retry). */
  timeoutMs: number;
  /** Tests point Gemini at a local stub. Default GEMINI_BASE_URL. */
  geminiBaseUrl?: string;
}

export interface LlmStatus {
  configured: boolean;
  /** The provider a request that names none gets. */
  provider?: LlmProvider;
  model?: string;
  providers: Record<LlmProvider, boolean>;
}

export interface Llm {
  status(): LlmStatus;
  /** One chat completion. Throws ServiceNotConfiguredError, UpstreamTimeoutError or UpstreamError. */
  query(request: AiQuery, signal?: AbortSignal): Promise<AiAnswer>;
}

const NOT_CONFIGURED: Record<LlmProvider | 'any', string> = {
  any: 'The AI service is not configured: set OPENAI_API_KEY, or LLM_PROVIDER=gemini with GOOGLE_API_KEY.',
  openai:
    'The AI service is not configured for openai: set OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible server).',
  gemini: 'The AI service is not configured for gemini: set GOOGLE_API_KEY.',
};

/**
 * The AI half of the service proxy: picks the provider (the request's, else LLM_PROVIDER, else
 * whichever has a key, OpenAI first), asks it through the `openai` package and answers in one
 * shape whatever the provider. Keys stay in this process: they are sent only to the provider
 * and scrubbed from any upstream message passed on.
 */
export function createLlm({ llm, timeoutMs, geminiBaseUrl = GEMINI_BASE_URL }: LlmOptions): Llm {
  const providers: Record<LlmProvider, boolean> = {
    // A local OpenAI-compatible server (vLLM, Ollama) may need no key, only a URL.
    openai: Boolean(llm.openaiApiKey || llm.openaiBaseUrl),
    gemini: Boolean(llm.googleApiKey),
  };
  const fallback: LlmProvider | undefined =
    llm.provider ?? (providers.openai ? 'openai' : providers.gemini ? 'gemini' : undefined);
  // OpenAI's own API wants max_completion_tokens (its reasoning models refuse max_tokens);
  // Gemini's endpoint and most OpenAI-compatible servers know only max_tokens.
  const tokenLimitField = (provider: LlmProvider) =>
    provider === 'openai' && new URL(llm.openaiBaseUrl ?? OPENAI_BASE_URL).hostname === 'api.openai.com'
      ? 'max_completion_tokens'
      : 'max_tokens';
  const secrets = [llm.openaiApiKey, llm.googleApiKey].filter((k): k is string => !!k && k.length >= 4);
  const clients = new Map<LlmProvider, OpenAI>();

  const client = (provider: LlmProvider): OpenAI => {
    let made = clients.get(provider);
    if (!made) {
      made = new OpenAI({
        apiKey: provider === 'openai' ? (llm.openaiApiKey ?? 'none') : llm.googleApiKey,
        baseURL: provider === 'openai' ? (llm.openaiBaseUrl ?? OPENAI_BASE_URL) : geminiBaseUrl,
        // Given explicitly, or the SDK reads them from process.env itself.
        adminAPIKey: null,
        organization: null,
        project: null,
        webhookSecret: null,
        logLevel: 'off',
        timeout: timeoutMs,
        maxRetries: 0,
      });
      clients.set(provider, made);
    }
    return made;
  };

  const scrub = (text: string): string => {
    let out = text;
    for (const secret of secrets) out = out.split(secret).join('***');
    // Providers echo a key back partly masked (OpenAI: "sk-abc***xyz"); none of it goes out.
    out = out.replace(/\b(sk-|AIza)[A-Za-z0-9_*.-]{6,}/g, '$1***');
    return out.length > 300 ? `${out.slice(0, 297)}...` : out;
  };

  const upstreamFailure = (provider: LlmProvider, err: unknown): Error => {
    if (err instanceof OpenAI.APIConnectionTimeoutError) return new UpstreamTimeoutError('AI', timeoutMs);
    if (err instanceof OpenAI.APIUserAbortError) return new UpstreamError('The AI request was cancelled.');
    if (err instanceof OpenAI.APIConnectionError)
      return new UpstreamError(`The ${provider} service could not be reached.`);
    if (err instanceof OpenAI.APIError && err.status) {
      const said = scrub(String(err.message ?? '').replace(/^\d{3}\s*/, '')).replace(/\.?\s*$/, '');
      return new UpstreamError(`The ${provider} service answered ${err.status}${said ? `: ${said}` : ''}.`);
    }
    return new UpstreamError(`The ${provider} service gave an answer that could not be read.`);
  };

  return {
    status: () => ({
      configured: fallback !== undefined && providers[fallback],
      provider: fallback,
      model: fallback && modelFor(llm, fallback),
      providers,
    }),

    async query(request, signal) {
      const provider = request.provider ?? fallback;
      if (!provider) throw new ServiceNotConfiguredError(NOT_CONFIGURED.any);
      if (!providers[provider]) throw new ServiceNotConfiguredError(NOT_CONFIGURED[provider]);
      const model = request.model ?? modelFor(llm, provider);
      const wantsJson = isJsonFormat(request.response_format);

      let completion: OpenAI.Chat.Completions.ChatCompletion;
      try {
        completion = await client(provider).chat.completions.create(
          {
            model,
            messages: messagesFor(request, wantsJson),
            ...(request.response_format !== undefined && {
              response_format: toOpenAiFormat(request.response_format),
            }),
            ...(request.max_tokens !== undefined && { [tokenLimitField(provider)]: request.max_tokens }),
            ...(request.temperature !== undefined && { temperature: request.temperature }),
          },
          { signal },
        );
      } catch (err) {
        throw upstreamFailure(provider, err);
      }
      const choice = completion.choices?.[0];
      if (!choice) throw new UpstreamError(`The ${provider} service answered without a completion.`);
      const text = choice.message?.content ?? '';
      const parsed = wantsJson ? parseJson(text) : undefined;
      const usage = completion.usage;
      return {
        provider,
        model: typeof completion.model === 'string' && completion.model ? completion.model : model,
        content: parsed ? parsed.value : text,
        format: parsed ? 'json' : 'text',
        finish_reason: choice.finish_reason ?? null,
        usage: usage
          ? {
              prompt_tokens: usage.prompt_tokens ?? 0,
              completion_tokens: usage.completion_tokens ?? 0,
              total_tokens: usage.total_tokens ?? 0,
            }
          : null,
      };
    },
  };
}

function modelFor(llm: Config['llm'], provider: LlmProvider): string {
  return (provider === 'openai' ? llm.openaiModel : llm.googleModel) ?? DEFAULT_MODELS[provider];
}

function isJsonFormat(format: AiQuery['response_format']): boolean {
  if (format === undefined || format === 'text') return false;
  return format === 'json' || format.type !== 'text';
}

function toOpenAiFormat(
  format: NonNullable<AiQuery['response_format']>,
): OpenAI.Chat.Completions.ChatCompletionCreateParams['response_format'] {
  if (format === 'json') return { type: 'json_object' };
  if (format === 'text') return { type: 'text' };
  return format as OpenAI.Chat.Completions.ChatCompletionCreateParams['response_format'];
}

/**
 * OpenAI refuses JSON mode unless a message says "JSON"; the Exec Agent's clients asked for
 * `response_format: "json"` without saying so, so the system message says it for them.
 */
function messagesFor(
  request: AiQuery,
  wantsJson: boolean,
): OpenAI.Chat.Completions.ChatCompletionMessageParam[] {
  let system = request.system;
  if (wantsJson && !/json/i.test(`${system ?? ''} ${request.prompt}`)) {
    system = [system, 'Answer with a single JSON value.'].filter(Boolean).join('\n\n');
  }
  return [
    ...(system ? [{ role: 'system' as const, content: system }] : []),
    { role: 'user' as const, content: request.prompt },
  ];
}

/** The answer as JSON, a ```json fence around it allowed (models add one even when told not to). */
function parseJson(text: string): { value: unknown } | undefined {
  const fenced = /^\s*```(?:json)?\s*\n([\s\S]*?)\n?```\s*$/i.exec(text);
  try {
    return { value: JSON.parse(fenced ? (fenced[1] as string) : text) };
  } catch {
    return undefined;
  }
}
