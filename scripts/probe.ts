// Used by prepare.sh: says, in shell-readable words, whether the Redis and Docker that the
// config names answer, reading REDIS_URL and DOCKER_HOST exactly as Dockhand itself will.
import { type Config, loadConfig } from '../core/config.ts';
import { ConfigError } from '../core/errors.ts';
import { createRedis } from '../queues/connection.ts';
import { createDocker } from '../roles/docker-client.ts';

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  // The same one line (and exit code) the dockhand command gives for a bad value.
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`dockhand: ${err.message}\n`);
  process.exit(2);
}
const url = new URL(config.redis.url);
const local = ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(url.hostname);

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms))]);

async function redisUp(): Promise<boolean> {
  const redis = createRedis(config.redis.url, 'producer', {
    connectTimeout: 1000,
    retryStrategy: () => null,
  });
  try {
    await withTimeout(
      redis.connect().then(() => redis.ping()),
      1500,
    );
    return true;
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

async function dockerUp(): Promise<boolean> {
  try {
    await withTimeout(createDocker(config.docker.host).ping(), 1500);
    return true;
  } catch {
    return false;
  }
}

const [redis, docker] = await Promise.all([redisUp(), dockerUp()]);
process.stdout.write(
  [
    `REDIS_UP=${redis ? 1 : 0}`,
    `REDIS_LOCAL=${local ? 1 : 0}`,
    `REDIS_PORT=${url.port || 6379}`,
    `REDIS_SHOWN=${JSON.stringify(config.redis.url.replace(/\/\/([^@/]*)@/, '//***@'))}`,
    `DOCKER_UP=${docker ? 1 : 0}`,
    `DOCKER_LOCAL=${config.docker.host && !config.docker.host.startsWith('unix:') ? 0 : 1}`,
    `DATA_DIR=${JSON.stringify(config.storage.dataDir)}`,
  ].join('\n'),
);
process.exit(0);
