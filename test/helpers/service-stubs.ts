import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a stub received. */
export interface StubCall {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface Stub {
  url: string;
  calls: StubCall[];
  /** Answers every held request. */
  release(): void;
  close(): Promise<void>;
}

/**
 * A loopback server answering requests with `answer`, recording each; a request `answer`
 * calls `hold` for stays unanswered until release() or close(): in flight exactly as long as
 * the test needs, with no timer.
 */
async function startStub(
  answer: (call: StubCall, res: ServerResponse, hold: (then: () => void) => void) => void,
): Promise<Stub> {
  const calls: StubCall[] = [];
  const held = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const call = { path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString() };
      calls.push(call);
      answer(call, res, (then) => {
        held.add(then);
        res.on('close', () => held.delete(then));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    release: () => {
      for (const then of held) then();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

/**
 * OpenAI's POST …/chat/completions, in OpenAI's shape, under any prefix (`/v1` for OpenAI,
 * `/gemini` standing in for Gemini's OpenAI-compatible endpoint). The last user message decides:
 * `hold` is held; `status:<code>` answers that status with an error that quotes the bearer key
 * back, as OpenAI's 401 does; anything else is echoed (as JSON text when a JSON format was asked).
 */
export function startOpenAiStub(): Promise<Stub> {
  return startStub((call, res, hold) => {
    if (!call.path.endsWith('/chat/completions')) return json(res, 404, { error: { message: 'no route' } });
    const body = JSON.parse(call.body) as {
      model: string;
      messages: Array<{ role: string; content: string }>;
      response_format?: { type: string };
    };
    const prompt = body.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
    if (prompt === 'hold') return hold(() => json(res, 200, {}));
    const status = /^status:(\d{3})$/.exec(prompt);
    if (status) {
      const key = String(call.headers.authorization ?? '').replace(/^Bearer /, '');
      return json(res, Number(status[1]), {
        error: { message: `Incorrect API key provided: ${key}.`, type: 'invalid_request_error', code: null },
      });
    }
    const wantsJson = body.response_format && body.response_format.type !== 'text';
    json(res, 200, {
      id: 'chatcmpl-stub',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: `${body.model}-stub`,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: wantsJson ? JSON.stringify({ echo: prompt }) : `echo: ${prompt}`,
          },
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    });
  });
}

/**
 * A data abstractor: answers any POST with `{path, body}` (the body parsed) and status 200;
 * under `/hold` it holds, under `/status/<code>` it answers that status.
 */
export function startDataServiceStub(): Promise<Stub> {
  return startStub((call, res, hold) => {
    if (call.path.startsWith('/hold')) return hold(() => json(res, 200, {}));
    const status = /^\/status\/(\d{3})/.exec(call.path);
    json(res, status ? Number(status[1]) : 200, { path: call.path, body: JSON.parse(call.body || 'null') });
  });
}
