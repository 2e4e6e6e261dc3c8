import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback HTTP server for HTTP jobs to fetch: /ok, /hold (answers `held` when the test calls
 * release(): a request stays in flight exactly as long as the test needs, with no timer),
 * /bytes?n=, /status/<code>, /redirect?to=<url>&code=, /echo (method, headers and body back as JSON).
 */
export async function startTargetServer(): Promise<{
  server: Server;
  url: string;
  port: number;
  release(): void;
  close(): Promise<void>;
}> {
  const held = new Set<() => void>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/ok') return res.end('ok');
    if (url.pathname === '/hold') {
      const answer = () => res.end('held');
      held.add(answer);
      res.on('close', () => held.delete(answer));
      return;
    }
    if (url.pathname === '/bytes') {
      const n = Number(url.searchParams.get('n') ?? 0);
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(n) });
      const chunk = Buffer.alloc(64 * 1024, 'a');
      let sent = 0;
      const write = () => {
        while (sent < n) {
          const part = chunk.subarray(0, Math.min(chunk.length, n - sent));
          sent += part.length;
          if (!res.write(part)) return res.once('drain', write);
        }
        res.end();
      };
      return write();
    }
    if (url.pathname.startsWith('/status/')) {
      res.statusCode = Number(url.pathname.split('/')[2]);
      return res.end('status');
    }
    if (url.pathname === '/redirect') {
      res.writeHead(Number(url.searchParams.get('code') ?? 302), {
        location: url.searchParams.get('to') ?? '/ok',
      });
      return res.end();
    }
    if (url.pathname === '/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            method: req.method,
            headers: req.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      });
      return;
    }
    res.statusCode = 404;
    res.end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    release: () => {
      for (const answer of held) answer();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
