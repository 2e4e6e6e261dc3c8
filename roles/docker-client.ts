import Docker from 'dockerode';

/**
 * Builds the one dockerode client from DOCKER_HOST (config, not process.env), so tests
 * can point a worker at a second daemon. Undefined means the local socket. Accepts the
 * forms loadConfig() lets through; socket and pipe paths are taken as written, as
 * docker-modem does (a URL would percent-encode them).
 */
export function createDocker(dockerHost: string | undefined): Docker {
  if (!dockerHost) return new Docker({ socketPath: '/var/run/docker.sock' });
  if (dockerHost.startsWith('unix://')) return new Docker({ socketPath: dockerHost.slice('unix://'.length) });
  if (dockerHost.startsWith('npipe://'))
    return new Docker({ socketPath: dockerHost.slice('npipe://'.length) });
  const url = new URL(dockerHost);
  if (url.protocol === 'tcp:' || url.protocol === 'http:' || url.protocol === 'https:') {
    return new Docker({
      host: url.hostname,
      port: Number(url.port || 2375),
      protocol: url.protocol === 'https:' ? 'https' : 'http',
    });
  }
  throw new Error(`DOCKER_HOST ${dockerHost} is not a unix://, tcp://, http(s):// or npipe:// address.`);
}
