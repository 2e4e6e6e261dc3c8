import type { App } from './app.ts';

/** Starts listening; the one place the gateway opens a port. Answers the URL it listens on. */
export function listen(app: App, server: { port: number; host: string }): Promise<string> {
  return app.listen({ port: server.port, host: server.host });
}
