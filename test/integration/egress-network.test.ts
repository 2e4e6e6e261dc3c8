import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import t from 'tap';
import { ensureEgressNetwork, removeEgressNetwork } from '../../runtimes/egress-network.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

/*
 * Everything here stays on this machine. The "outside" is a network namespace on a veth pair,
 * holding 10.213.213.2 (a private target) and 169.254.169.254 (a stand-in for the cloud
 * metadata service), with a route to it from the host: traffic from containers to it is
 * forwarded, as it would be to a real metadata service. The host's own addresses are reached
 * through INPUT; a server in this process listens on all of them. While the test runs, the
 * host's own requests to 169.254.169.254 reach the stand-in too.
 */
const sh = promisify(execFile);
const docker = new Docker();
const IMAGE = 'dockhand-runtime-node20:local';
const id = process.pid;
const net = { name: `dockhand-egress-t${id}`, bridge: `dhe-t${id}`, chain: `DHE-T${id}` };
const ns = { name: `dhe-t${id}`, hostVeth: `dhe-h${id}`, nsVeth: `dhe-n${id}` };
const HOST_SIDE = '10.213.213.1';
const TARGET = '10.213.213.2';
const METADATA = '169.254.169.254';
const LABEL = { 'dockhand.test': `egress-${id}` };

async function whyNotHere(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root, for iptables and a network namespace';
  const iptables = await sh('iptables', ['-w', '-S', 'DOCKER-USER']).catch((err: Error) => err);
  if (iptables instanceof Error) {
    return (iptables as NodeJS.ErrnoException).code === 'ENOENT'
      ? 'iptables is not installed'
      : `dockerd does not use iptables here (no DOCKER-USER chain): ${iptables.message.trim()}`;
  }
  if (await sh('ip', ['netns', 'list']).catch(() => false)) {
    if (
      await docker
        .getImage(IMAGE)
        .inspect()
        .catch(() => false)
    )
      return undefined;
    return `the runtime image ${IMAGE} is missing (scripts/build-runtime-images.sh)`;
  }
  return 'iproute2 (ip netns) is missing';
}

// Prints one line: OK <reply>, ERR <code> or TIMEOUT. 1.5 s: a REJECT answers in microseconds, a DROP never.
const PROBE = `
const [, host, port, proto] = process.argv;
const done = (s) => { console.log(s); process.exit(0); };
setTimeout(() => done('TIMEOUT'), 1500);
if (proto === 'udp') {
  const s = require('dgram').createSocket('udp4');
  s.on('message', (m) => done('OK ' + m));
  s.on('error', (e) => done('ERR ' + e.code));
  s.connect(+port, host, () => s.send('ping'));
} else {
  const s = require('net').connect({ host, port: +port });
  s.on('data', (d) => done('OK ' + String(d).trim()));
  s.on('error', (e) => done('ERR ' + e.code));
}`;

// Answers "target" on TCP 8080 and 53 and on UDP 53, on every address of the namespace.
const TARGET_SERVER = `
const net = require('net');
let up = 0;
const ready = () => ++up === 3 && console.log('listening');
for (const port of [8080, 53]) net.createServer((s) => s.end('target\\n')).listen(port, '0.0.0.0', ready);
const u = require('dgram').createSocket('udp4');
u.on('message', (m, r) => u.send('target', r.port, r.address));
u.bind(53, '0.0.0.0', ready);`;

async function probe(network: string, host: string, port: number, proto = 'tcp'): Promise<string> {
  const container = await docker.createContainer({
    Image: IMAGE,
    Cmd: ['/usr/bin/node', '-e', PROBE, host, String(port), proto],
    User: '65534:65534',
    Tty: true,
    Labels: LABEL,
    HostConfig: { NetworkMode: network, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] },
  });
  try {
    await container.start();
    await container.wait();
    return (await container.logs({ stdout: true, stderr: true })).toString().trim();
  } finally {
    await container.remove({ force: true });
  }
}

const skip = await whyNotHere();
if (skip) {
  t.test('egress network on real Docker', { skip }, async () => {});
} else {
  const undo: Array<() => Promise<unknown>> = [];
  t.teardown(async () => {
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`dockhand.test=egress-${id}`] },
    });
    await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    await removeEgressNetwork({ docker, ...net });
    for (const step of undo.reverse()) await step().catch(() => {});
  });

  const ip = (...args: string[]) => sh('ip', args);
  await ip('netns', 'add', ns.name);
  undo.push(() => ip('netns', 'del', ns.name));
  await ip('link', 'add', ns.hostVeth, 'type', 'veth', 'peer', 'name', ns.nsVeth);
  undo.push(() => ip('link', 'del', ns.hostVeth));
  await ip('link', 'set', ns.nsVeth, 'netns', ns.name);
  await ip('addr', 'add', `${HOST_SIDE}/30`, 'dev', ns.hostVeth);
  await ip('link', 'set', ns.hostVeth, 'up');
  await ip('-n', ns.name, 'addr', 'add', `${TARGET}/30`, 'dev', ns.nsVeth);
  await ip('-n', ns.name, 'addr', 'add', `${METADATA}/32`, 'dev', ns.nsVeth);
  await ip('-n', ns.name, 'link', 'set', ns.nsVeth, 'up');
  await ip('-n', ns.name, 'link', 'set', 'lo', 'up');
  await ip('-n', ns.name, 'route', 'add', 'default', 'via', HOST_SIDE);
  await ip('route', 'add', `${METADATA}/32`, 'via', TARGET);
  undo.push(() => ip('route', 'del', `${METADATA}/32`, 'via', TARGET));

  const server: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', ns.name, process.execPath, '-e', TARGET_SERVER],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  // `ip netns exec` execs node in place, so this pid is the server's.
  undo.push(async () => {
    if (server.exitCode !== null || server.signalCode !== null) return;
    const exited = once(server, 'exit');
    server.kill();
    await exited;
  });
  await once(server.stdout as NodeJS.ReadableStream, 'data');

  const host = createServer((s) => s.end('host\n'));
  host.listen(0, '0.0.0.0');
  await once(host, 'listening');
  undo.push(() => new Promise((resolve) => host.close(resolve)));
  const hostPort = (host.address() as AddressInfo).port;

  await ensureEgressNetwork({ docker, allow: [], dns: [], ...net });
  const info = await docker.getNetwork(net.name).inspect();
  const gateway = info.IPAM?.Config?.[0]?.Gateway as string;
  const refused = 'ERR EHOSTUNREACH'; // REJECT with icmp-admin-prohibited, at once

  t.test('from the default bridge, metadata, the private target and the host all answer', async (t) => {
    t.same(
      await Promise.all([
        probe('bridge', METADATA, 8080),
        probe('bridge', TARGET, 8080),
        probe('bridge', '172.17.0.1', hostPort),
        probe('bridge', gateway, hostPort),
      ]),
      ['OK target', 'OK target', 'OK host', 'OK host'],
    );
  });

  t.test('(a) from the egress network, the metadata address is refused', async (t) => {
    t.equal(await probe(net.name, METADATA, 8080), refused);
  });

  t.test('(b) the host is refused: the egress gateway, docker0 and another of its addresses', async (t) => {
    t.same(
      await Promise.all([
        probe(net.name, gateway, hostPort),
        probe(net.name, '172.17.0.1', hostPort),
        probe(net.name, HOST_SIDE, hostPort),
      ]),
      [refused, refused, refused],
    );
  });

  t.test('(c) a private address is refused', async (t) => {
    t.equal(await probe(net.name, TARGET, 8080), refused);
  });

  t.test('(d) an allowlisted address answers; the rest stays refused, and no rule is doubled', async (t) => {
    await ensureEgressNetwork({ docker, allow: [`${TARGET}/32`], dns: [], ...net });
    await ensureEgressNetwork({ docker, allow: [`${TARGET}/32`], dns: [], ...net });
    t.same(await Promise.all([probe(net.name, TARGET, 8080), probe(net.name, METADATA, 8080)]), [
      'OK target',
      refused,
    ]);
    const { stdout } = await sh('iptables', ['-w', '-S']);
    const lines = stdout.split('\n');
    t.equal(lines.filter((l) => l === `-A DOCKER-USER -i ${net.bridge} -j ${net.chain}-FWD`).length, 1);
    t.equal(lines.filter((l) => l === `-A INPUT -i ${net.bridge} -j ${net.chain}-IN`).length, 1);
    t.equal(lines.filter((l) => l === `-A ${net.chain}-FWD -d ${TARGET}/32 -j RETURN`).length, 1);
  });

  t.test('a resolver answers on port 53 (TCP and UDP) and only there', async (t) => {
    await ensureEgressNetwork({ docker, allow: [], dns: [TARGET], ...net });
    t.same(
      await Promise.all([
        probe(net.name, TARGET, 53),
        probe(net.name, TARGET, 53, 'udp'),
        probe(net.name, TARGET, 8080),
      ]),
      ['OK target', 'OK target', refused],
    );
  });

  t.test('remove leaves no network, jump or chain behind', async (t) => {
    await removeEgressNetwork({ docker, ...net });
    const gone = await docker
      .getNetwork(net.name)
      .inspect()
      .then(
        () => 200,
        (err: { statusCode?: number }) => err.statusCode,
      );
    t.equal(gone, 404, 'the network is gone');
    const { stdout } = await sh('iptables', ['-w', '-S']);
    t.notMatch(stdout, net.chain);
    t.notMatch(stdout, net.bridge);
  });
}
