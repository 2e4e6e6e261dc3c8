import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { leakCheck } from '../helpers/leak-check.ts';

/*
 * What docker/compose.yml promises, read as docker-compose reads it (YAML merge keys), for
 * machines where docker-compose itself is missing and test/integration/compose.test.ts skips.
 */

leakCheck(t);

interface Service {
  image?: string;
  command?: string[];
  user?: string;
  hostname?: string;
  network_mode?: string;
  cap_add?: string[];
  cap_drop?: string[];
  read_only?: boolean;
  volumes?: string[];
  environment?: Record<string, string>;
  profiles?: string[];
  ports?: string[];
}
const load = (file: string) =>
  parse(readFileSync(path.resolve(import.meta.dirname, '../../docker', file), 'utf8'), { merge: true }) as {
    services: Record<string, Service>;
  };
const { services } = load('compose.yml');
const local = load('compose.local.yml').services;
const roles = ['gateway', 'worker-1', 'worker-2', 'scheduler', 'bridge'];
/** `${expr}` as compose.yml spells it: docker-compose interpolates it, not JavaScript. */
const v = (expr: string) => `$\{${expr}}`;
const DATA = v('DOCKHAND_DATA_DIR:-/var/lib/dockhand');

t.test('every service is there', async (t) => {
  t.same(Object.keys(services).sort(), [
    'bridge',
    'gateway',
    'grafana',
    'minio',
    'prometheus',
    'redis',
    'scheduler',
    'worker-1',
    'worker-2',
  ]);
  for (const role of roles) t.equal(services[role]?.command?.[0], role.replace(/-\d$/, ''), role);
});

t.test('Redis: append-only, fsynced every second, never evicting', async (t) => {
  const args = services.redis?.command?.join(' ') ?? '';
  t.match(args, /--appendonly yes/);
  t.match(args, /--appendfsync everysec/);
  t.match(args, /--maxmemory-policy noeviction/);
  t.same(
    services.redis?.ports,
    [`127.0.0.1:${v('DOCKHAND_REDIS_PORT:-6379')}:6379`],
    'published on loopback only',
  );
});

t.test('DATA_DIR is the same path inside and out, in every role', async (t) => {
  for (const role of roles) {
    t.equal(services[role]?.environment?.DATA_DIR, DATA, role);
    t.ok(services[role]?.volumes?.includes(`${DATA}:${DATA}`), `${role} mounts it at the same path`);
  }
  for (const worker of ['worker-1', 'worker-2'])
    t.equal(
      services[worker]?.environment?.EXEC_INIT_PATH,
      `${DATA}/bin/dh-init`,
      `${worker} binds dh-init from it`,
    );
});

t.test('only the workers hold the socket; the other roles hold no capability', async (t) => {
  for (const role of roles) {
    const socket = services[role]?.volumes?.some((v) => v.startsWith('/var/run/docker.sock:')) ?? false;
    const worker = role.startsWith('worker');
    t.equal(socket, worker, `${role} ${worker ? 'has' : 'has no'} the socket`);
    if (worker) {
      t.equal(services[role]?.network_mode, 'host');
      t.same(services[role]?.cap_add, ['NET_ADMIN']);
    } else {
      t.same(services[role]?.cap_drop, ['ALL']);
      t.equal(services[role]?.read_only, true);
    }
  }
  for (const other of ['redis', 'minio', 'prometheus', 'grafana'])
    t.notOk(
      services[other]?.volumes?.some((v) => v.includes('docker.sock')),
      `${other} has no socket`,
    );
});

t.test('the two workers differ in host name and metrics port', async (t) => {
  const [one, two] = [services['worker-1'], services['worker-2']];
  t.not(one?.hostname, two?.hostname, 'owners `<hostname>/<pid>` never collide');
  t.not(one?.environment?.WORKER_METRICS_PORT, two?.environment?.WORKER_METRICS_PORT);
  t.match(one?.environment?.REDIS_URL, /^redis:\/\/127\.0\.0\.1:/, 'Redis on the host loopback');
});

t.test('compose.local.yml: local images, MinIO and Grafana left out', async (t) => {
  for (const role of roles) t.equal(local[role]?.image, v('DOCKHAND_LOCAL_IMAGE:-dockhand:local'), role);
  t.equal(local.redis?.image, v('DOCKHAND_REDIS_IMAGE:-dockhand-redis:local'));
  t.equal(local.prometheus?.image, v('DOCKHAND_PROMETHEUS_IMAGE:-dockhand-prometheus:local'));
  t.same(local.minio?.profiles, ['registry']);
  t.same(local.grafana?.profiles, ['registry']);
});
