import Docker from 'dockerode';

/**
 * Builds the one dockerode client from DOCKER_HOST (config, not process.env), so tests
 * can point a worker at a second daemon. Undefined means the local socket.
 */
export function createDocker(dockerHost: string | undefined): Docker {
  if (!dockerHost) return new Docker({ socketPath: '/var/run/docker.sock' });
  const url = new URL(dockerHost);
  if (url.protocol === 'unix:') return new Docker({ socketPath: url.pathname });
  if (url.protocol === 'tcp:' || url.protocol === 'http:' || url.protocol === 'https:') {
    return new Docker({
      host: url.hostname,
      port: Number(url.port || 2375),
      protocol: url.protocol === 'https:' ? 'https' : 'http',
    });
  }
  throw new Error(`DOCKER_HOST ${dockerHost} is not a unix:// or tcp:// address.`);
}
