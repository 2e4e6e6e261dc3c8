import OpenAI from 'openai';
import type { Config } from '../../core/config.ts';
import type { BatchResult } from './engine.ts';

export interface Narrator {
  /** Returns the result with plain-language rationales; on any failure, the result unchanged. */
  rewrite(result: BatchResult): Promise<BatchResult>;
}

// Gemini speaks the OpenAI chat API at this endpoint, so one client serves both providers.
const GEMINI_BASE_URL = 'https://generativelanguage.googleapis.com/v1beta/openai/';

/**
 * The optional LLM pass. Scores never depend on it: it only rewrites each rationale, in one
 * call per batch, and keeps the rule-based sentence in `evidence.rule_rationale`. No provider
 * or no key means no narrator.
 */
export function createNarrator(
  llm: Config['llm'],
  log: (line: string) => void,
  options: { timeoutMs?: number } = {},
): Narrator | undefined {
  if (!llm.provider) return undefined;
  const gemini = llm.provider === 'gemini';
  const apiKey = gemini ? llm.googleApiKey : llm.openaiApiKey;
  if (!apiKey) return undefined;
  const client = new OpenAI({
    apiKey,
    baseURL: gemini ? (llm.openaiBaseUrl ?? GEMINI_BASE_URL) : llm.openaiBaseUrl,
    timeout: options.timeoutMs ?? 30_000,
    maxRetries: 1,
  });
  const model = (gemini ? llm.googleModel : llm.openaiModel) || (gemini ? 'gemini-2.0-flash' : 'gpt-4o-mini');

  return {
    async rewrite(result) {
      const items = Object.values(result.metrics).map((m) => ({
        metric_id: m.metric_id,
        score: m.score,
        rationale: m.rationale,
        gaps: m.gaps,
      }));
      if (items.length === 0) return result;
      try {
        const completion = await client.chat.completions.create({
          model,
          temperature: 0.2,
          response_format: { type: 'json_object' },
          messages: [
            {
              role: 'system',
              content:
                'You explain cloud infrastructure scores to engineers. For each metric, rewrite the rationale as one or two plain sentences: what the score means and the most useful next step. Never change numbers. A null score means the metric was not scored: say which input it lacked (see gaps) and never give it a score. Answer JSON: {"rationales": {"<metric_id>": "<text>"}}.',
            },
            { role: 'user', content: JSON.stringify(items) },
          ],
        });
        const text = completion.choices[0]?.message?.content ?? '';
        const rationales = (JSON.parse(text) as { rationales?: Record<string, unknown> }).rationales ?? {};
        const metrics = Object.fromEntries(
          Object.entries(result.metrics).map(([id, m]) => {
            const rewritten = rationales[id];
            if (typeof rewritten !== 'string' || rewritten.trim() === '') return [id, m];
            return [
              id,
              { ...m, rationale: rewritten.trim(), evidence: { ...m.evidence, rule_rationale: m.rationale } },
            ];
          }),
        );
        return { ...result, metrics };
      } catch (err) {
        log(`narrative skipped, rule-based rationales kept: ${(err as Error).message}`);
        return result;
      }
    },
  };
}
