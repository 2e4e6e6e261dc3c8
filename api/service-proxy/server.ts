import { get } from 'node:http';
import ipaddr from 'ipaddr.js';
import { ConfigError, errorCode } from '../../core/errors.ts';
import type { ServiceProxyApp } from './app.ts';
import { PROXY_MARKER } from './routes.ts';

export interface ServingProxy {
  /** True while this process's proxy holds the port; false while another Dockhand process's does. */
  readonly serving: boolean;
  /** Stops listening (answers in flight finish) and closes the app. Idempotent. */
  close(): Promise<void>;
}

export interface ServeOptions {
  /** One IP address: the service network's gateway, or loopback in tests. */
  host: string;
  port: number;
  /** While another Dockhand process holds the port, how often to try to take it over. Default 5 s. */
  retryMs?: number;
  log?: (message: string) => void;
}

/**
 * Opens the proxy on one address, never all of them: it spends the operator's AI keys for
 * whoever reaches it, and the service network's firewall lets containers reach exactly this
 * address and port.
 *
 * Several Dockhand processes on one host (`all` plus `worker`s) share the one service network,
 * so they share the port too: the first to listen serves every container, and the others,
 * finding a Dockhand proxy there (its /health says so), stand by and take the port over when
 * it is freed (Node 20 has no SO_REUSEPORT to share it outright). A port held by anything else
 * stops start-up: containers would be talking to that program.
 */
export async function serveServiceProxy(app: ServiceProxyApp, options: ServeOptions): Promise<ServingProxy> {
  const { host, port, retryMs = 5000, log = () => {} } = options;
  if (!ipaddr.isValid(host) || ipaddr.parse(host).range() === 'unspecified') {
    throw new Error(`The service proxy listens on one IP address, not ${JSON.stringify(host)}.`);
  }
  let serving = false;
  let retry: NodeJS.Timeout | undefined;
  let attempt: Promise<void> | undefined;

  /** True when listening; false when the port is held (EADDRINUSE); throws on anything else. */
  const tryListen = async (): Promise<boolean> => {
    try {
      await app.listen({ host, port });
      return true;
    } catch (err) {
      if (errorCode(err) === 'EADDRINUSE') return false;
      throw err;
    }
  };

  try {
    serving = await tryListen();
    if (!serving) {
      if (!(await isDockhandProxy(host, port))) {
        throw new ConfigError(
          'SERVICE_PROXY_PORT',
          `The service proxy cannot listen on ${host}:${port}: another program holds that port; set SERVICE_PROXY_PORT to a free port.`,
        );
      }
      log(`Another Dockhand process serves the service proxy on ${host}:${port}; this one stands by.`);
      retry = setInterval(() => {
        attempt ??= tryListen()
          .then((ok) => {
            if (!ok) return;
            serving = true;
            clearInterval(retry);
            log(`The service proxy on ${host}:${port} is served by this process now.`);
          })
          .catch((err: Error) => log(`The service proxy could not take over ${host}:${port}: ${err.message}`))
          .finally(() => {
            attempt = undefined;
          });
      }, retryMs);
      retry.unref();
    }
  } catch (err) {
    await app.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    get serving() {
      return serving;
    },
    close() {
      closing ??= (async () => {
        clearInterval(retry);
        // A take-over under way finishes first, so that what it opened is closed too.
        await attempt;
        await app.close();
      })();
      return closing;
    },
  };
}

/**
 * A Dockhand proxy's every answer carries its marker; anything else holding the port is someone
 * else. One connection of its own (no keep-alive pool), destroyed once the headers are read, so
 * that nothing of the probe outlives it whatever the other side does.
 */
function isDockhandProxy(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = get({ host, port, path: '/health', agent: false, timeout: 2000 }, (response) => {
      resolve(response.headers[PROXY_MARKER.header] === PROXY_MARKER.value);
      request.destroy();
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(false));
    request.on('close', () => resolve(false)); // no effect once resolved
  });
}
