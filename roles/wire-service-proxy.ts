import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { buildServiceProxy, LOOPBACK } from '../api/service-proxy/app.ts';
import { serveServiceProxy } from '../api/service-proxy/server.ts';
import type { Config } from '../core/config.ts';
import {
  ensureServiceNetwork,
  type ServiceName,
  type ServiceNetwork,
  type ServiceNetworkOptions,
  serviceEnv,
} from '../runtimes/service-network.ts';

/** What the exec runner needs to give a container service access. */
export interface ServiceAccess extends ServiceNetwork {
  /** SERVICE_PROXY_URL, DATA_SERVICE_URL, AI_SERVICE_URL for a request's `service_access`. */
  env(serviceAccess: readonly ServiceName[]): Record<string, string>;
}

export interface WiredServiceProxy {
  services: ServiceAccess;
  /** Stops the proxy (answers in flight finish). The network and its rules stay, for the next start. */
  close(): Promise<void>;
}

/**
 * The service network and the proxy on its gateway, for processes that work the exec queue.
 * The network's firewall opens the proxy's port on the gateway; when that port turns out to be
 * held by some other program (not this proxy, not another Dockhand process's), the rules are
 * written shut again and start-up fails, so no container reaches that program.
 */
export async function wireServiceProxy(deps: {
  config: Config;
  docker: Docker;
  registry: Registry;
  logger: Logger;
  /** Tests: a network, bridge and chain of their own. */
  network?: Pick<ServiceNetworkOptions, 'name' | 'bridge' | 'chain'>;
  /** Tests: Gemini's endpoint on a local stub. */
  geminiBaseUrl?: string;
  /** Tests: how often a standing-by process tries to take the port over. */
  retryMs?: number;
}): Promise<WiredServiceProxy> {
  const { config, docker, logger } = deps;
  const port = config.serviceProxy.port;
  const network = await ensureServiceNetwork({ docker, port, ...deps.network });
  const app = await buildServiceProxy({
    config,
    registry: deps.registry,
    logger,
    allowFrom: [network.subnet, ...LOOPBACK],
    geminiBaseUrl: deps.geminiBaseUrl,
  });
  let served: Awaited<ReturnType<typeof serveServiceProxy>>;
  try {
    served = await serveServiceProxy(app, {
      host: network.gatewayIp,
      port,
      retryMs: deps.retryMs,
      log: (message) => logger.info(message),
    });
  } catch (err) {
    await ensureServiceNetwork({ docker, port, ...deps.network, open: false }).catch((shut: Error) =>
      logger.error({ err: shut }, 'The service network could not be shut after the proxy failed to start.'),
    );
    throw err;
  }
  logger.info(
    { network: network.network, proxyUrl: network.proxyUrl, serving: served.serving },
    'Service proxy ready for exec containers.',
  );
  return {
    services: { ...network, env: (access) => serviceEnv(network.proxyUrl, access) },
    close: () => served.close(),
  };
}
