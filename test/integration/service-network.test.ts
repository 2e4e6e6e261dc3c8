import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { loadConfig } from '../../core/config.ts';
import { ConfigError } from '../../core/errors.ts';
import { wireServiceProxy } from '../../roles/wire-service-proxy.ts';
import { OWNER_LABEL, SANDBOX_LABEL } from '../../runtimes/docker-sandbox.ts';
import { removeServiceNetwork } from '../../runtimes/service-network.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { startDataServiceStub, startOpenAiStub } from '../helpers/service-stubs.ts';
import { waitFor } from '../helpers/wait-for.ts';

leakCheck(t);

/*
 * The service network on real Docker and iptables, probed from containers as an exec container
 * with service_access would be: the proxy answers (by the gateway's address and by
 * host.docker.internal, through the URLs in its environment); the rest of the host (Redis, a
 * port open on every address), other containers (on the default bridge, on this network), and
 * public addresses are refused at once. A network, bridge and chain of this test's own, removed
 * at the end. Everything stays on this machine: the data and AI services are local stubs.
 */
const sh = promisify(execFile);
const docker = new Docker();
const IMAGE = 'dockhand-runtime-node20:local';
const id = process.pid;
const net = { name: `dockhand-svc-t${id}`, bridge: `dhs-t${id}`, chain: `DHS-T${id}` };
const LABELS = { [SANDBOX_LABEL]: '1', [OWNER_LABEL]: `${hostname()}/${process.pid}` };
const REFUSED = 'ERR EHOSTUNREACH'; // REJECT with icmp-admin-prohibited, at once

async function whyNotHere(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root, for iptables';
  const iptables = await sh('iptables', ['-w', '-S', 'DOCKER-USER']).catch((err: Error) => err);
  if (iptables instanceof Error) {
    return (iptables as NodeJS.ErrnoException).code === 'ENOENT'
      ? 'iptables is not installed'
      : `dockerd does not use iptables here (no DOCKER-USER chain): ${iptables.message.trim()}`;
  }
  const image = await docker
    .getImage(IMAGE)
    .inspect()
    .catch(() => undefined);
  return image ? undefined : `the runtime image ${IMAGE} is missing (scripts/build-runtime-images.sh)`;
}

/**
 * Runs every probe at once and prints `RESULT` and one JSON object, name → result: `OK` (TCP connected),
 * `HTTP <status> <body>`, `ERR <code>` or `TIMEOUT` (3 s: a REJECT answers in microseconds,
 * a DROP never, so a TIMEOUT means a rule is missing).
 */
const PROBE = `
const probes = JSON.parse(process.argv[1]);
const within = (p) => Promise.race([p, new Promise((r) => setTimeout(() => r('TIMEOUT'), 3000))]);
const tcp = ([host, port]) => new Promise((resolve) => {
  const s = require('net').connect({ host, port });
  s.on('connect', () => { s.destroy(); resolve('OK'); });
  s.on('error', (e) => resolve('ERR ' + e.code));
});
const http = async ({ url, body }) => {
  try {
    const r = await fetch(url, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
    return 'HTTP ' + r.status + ' ' + (await r.text());
  } catch (e) { return 'ERR ' + (e.cause?.code ?? e.message); }
};
(async () => {
  const out = {};
  await Promise.all(Object.entries(probes).map(async ([name, p]) => {
    const url = p.url && p.url.replace(/^env:([A-Z_]+)/, (_, v) => process.env[v]);
    out[name] = await within(p.tcp ? tcp(p.tcp) : http({ ...p, url }));
  }));
  console.log('RESULT ' + JSON.stringify(out));
  process.exit(0);
})();`;

type Probe = { tcp: [string, number] } | { url: string; body?: unknown };

async function probe(
  network: string,
  probes: Record<string, Probe>,
  extra: { extraHosts?: string[]; env?: Record<string, string> } = {},
): Promise<Record<string, string>> {
  const container = await docker.createContainer({
    Image: IMAGE,
    Cmd: ['/usr/bin/node', '-e', PROBE, JSON.stringify(probes)],
    User: '65534:65534',
    Tty: true,
    Labels: LABELS,
    Env: Object.entries(extra.env ?? {}).map(([k, v]) => `${k}=${v}`),
    HostConfig: {
      NetworkMode: network,
      ExtraHosts: extra.extraHosts,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
    },
  });
  try {
    await container.start();
    await container.wait();
    // A prefix, because docker-modem hands back a log that is all JSON parsed, not as text.
    const text = (await container.logs({ stdout: true, stderr: true })).toString();
    const line = /^RESULT (.*)$/m.exec(text);
    if (!line) throw new Error(`the probe printed no result: ${text.slice(0, 500)}`);
    return JSON.parse(line[1] as string);
  } finally {
    await container.remove({ force: true });
  }
}

/** A container answering `<name>` on TCP 8080, on `network`; resolves with its address there. */
async function startTarget(network: string, name: string): Promise<string> {
  const container = await docker.createContainer({
    Image: IMAGE,
    Cmd: [
      '/usr/bin/node',
      '-e',
      `require('net').createServer((s) => s.end('${name}')).listen(8080, () => console.log('listening'))`,
    ],
    User: '65534:65534',
    Tty: true,
    Labels: LABELS,
    HostConfig: { NetworkMode: network, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] },
  });
  await container.start();
  await waitFor(async () => (await container.logs({ stdout: true })).toString().includes('listening'), {
    what: `the ${name} container to listen`,
  });
  const info = await container.inspect();
  return info.NetworkSettings.Networks[network]?.IPAddress as string;
}

/** The host's own address on its main interface (not loopback, not a Docker bridge). */
function primaryAddress(): string | undefined {
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (/^(lo|docker|br-|dh|veth)/.test(name)) continue;
    const v4 = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const skip = await whyNotHere();
if (skip) {
  t.test('service network on real Docker', { skip }, async () => {});
} else {
  const undo: Array<() => Promise<unknown>> = [];
  t.teardown(async () => {
    for (const step of undo.reverse()) await step().catch(() => {});
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`${OWNER_LABEL}=${LABELS[OWNER_LABEL]}`] },
    });
    await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    await removeServiceNetwork({ docker, ...net });
  });

  const openai = await startOpenAiStub();
  const data = await startDataServiceStub();
  undo.push(
    () => openai.close(),
    () => data.close(),
  );

  // A port open on every address of the host, as a careless service's would be.
  const host = createServer((s) => {
    s.on('error', () => {}); // a probe hangs up as soon as it is connected
    s.end('host');
  });
  host.listen(0, '0.0.0.0');
  await once(host, 'listening');
  undo.push(() => new Promise((resolve) => host.close(resolve)));
  const hostPort = (host.address() as AddressInfo).port;

  const port = await freePort();
  const config = loadConfig({
    SERVICE_PROXY_PORT: String(port),
    DATA_SERVICE_URL: data.url,
    OPENAI_API_KEY: 'sk-test-network',
    OPENAI_BASE_URL: `${openai.url}/v1`,
  });
  const registry = new Registry();
  const wired = await wireServiceProxy({
    config,
    docker,
    registry,
    logger: pino({ level: 'silent' }),
    network: net,
  });
  undo.push(() => wired.close());
  const { services } = wired;
  const gw = services.gatewayIp;
  const primary = primaryAddress();

  t.test('what the exec runner gets: network, gateway, URLs, extra host, environment', async (t) => {
    t.match(services, {
      network: net.name,
      bridge: net.bridge,
      gatewayIp: /^\d+\.\d+\.\d+\.\d+$/,
      proxyUrl: `http://${gw}:${port}`,
      extraHosts: [`host.docker.internal:${gw}`],
    });
    t.same(services.env(['data', 'ai']), {
      SERVICE_PROXY_URL: `http://${gw}:${port}`,
      DATA_SERVICE_URL: `http://${gw}:${port}/data`,
      AI_SERVICE_URL: `http://${gw}:${port}/ai`,
    });
    const info = await docker.getNetwork(net.name).inspect();
    t.equal(info.Internal, true, 'Docker opens no route out of it');
  });

  t.test(
    'from the network, the proxy answers: by the gateway, by host.docker.internal, by the env URLs',
    async (t) => {
      const results = await probe(
        net.name,
        {
          gateway: { url: `http://${gw}:${port}/health` },
          hostName: { url: `http://host.docker.internal:${port}/health` },
          data: { url: 'env:DATA_SERVICE_URL/query', body: { operation: 'traverse' } },
          ai: { url: 'env:AI_SERVICE_URL/query', body: { provider: 'openai', prompt: 'Hello world' } },
        },
        { extraHosts: services.extraHosts, env: services.env(['data', 'ai']) },
      );
      t.match(results.gateway, /^HTTP 200 \{"status":"ok"/);
      t.match(results.hostName, /^HTTP 200 \{"status":"ok"/);
      t.equal(results.data, 'HTTP 200 {"path":"/query","body":{"operation":"traverse"}}');
      t.match(
        results.ai,
        /^HTTP 200 \{"provider":"openai","model":"gpt-4o-mini-stub","content":"echo: Hello world"/,
      );
      t.match(
        await registry.metrics(),
        /dockhand_service_proxy_requests_total\{service="ai",status="200"\} 1/,
        'counted in the process registry',
      );
    },
  );

  t.test(
    'from the network, the rest of the host is refused: Redis, an open port, other addresses',
    async (t) => {
      const probes: Record<string, Probe> = {
        redisLoopback: { tcp: ['127.0.0.1', 6379] },
        redisGateway: { tcp: [gw, 6379] },
        openPortGateway: { tcp: [gw, hostPort] },
        openPortDocker0: { tcp: ['172.17.0.1', hostPort] },
        proxyPortDocker0: { tcp: ['172.17.0.1', port] },
      };
      if (primary) {
        probes.redisPrimary = { tcp: [primary, 6379] };
        probes.openPortPrimary = { tcp: [primary, hostPort] };
      }
      const results = await probe(net.name, probes);
      t.same(results, {
        // The container's own loopback: nothing of the host's is there.
        redisLoopback: 'ERR ECONNREFUSED',
        redisGateway: REFUSED,
        openPortGateway: REFUSED,
        openPortDocker0: REFUSED,
        proxyPortDocker0: REFUSED,
        ...(primary && { redisPrimary: REFUSED, openPortPrimary: REFUSED }),
      });
    },
  );

  t.test('from the network, other containers and public addresses are refused', async (t) => {
    const [outside, peer] = await Promise.all([
      startTarget('bridge', 'outside'),
      startTarget(net.name, 'peer'),
    ]);
    const results = await probe(net.name, {
      outside: { tcp: [outside, 8080] },
      peer: { tcp: [peer, 8080] },
      dns: { tcp: ['1.1.1.1', 53] },
      web: { tcp: ['8.8.8.8', 443] },
    });
    t.same(results, { outside: REFUSED, peer: REFUSED, dns: REFUSED, web: REFUSED });

    // The control: from the default bridge the same targets answer, so the refusals above are
    // the service network's doing. The proxy, reachable there as one of the host's addresses,
    // serves only its own network's containers.
    const control = await probe('bridge', {
      outside: { tcp: [outside, 8080] },
      openPort: { tcp: ['172.17.0.1', hostPort] },
      proxy: { url: `http://${gw}:${port}/health` },
    });
    t.same(control, {
      outside: 'OK',
      openPort: 'OK',
      proxy: 'HTTP 403 {"error":"forbidden","message":"The service proxy serves exec containers only."}',
    });
  });

  t.test(
    'a second start keeps one jump and one door; the door is the proxy port on the gateway only',
    async (t) => {
      const again = await wireServiceProxy({
        config,
        docker,
        registry,
        logger: pino({ level: 'silent' }),
        network: net,
      });
      await again.close();
      const { stdout } = await sh('iptables', ['-w', '-S']);
      const lines = stdout.split('\n');
      t.equal(lines.filter((l) => l === `-A DOCKER-USER -i ${net.bridge} -j ${net.chain}-FWD`).length, 1);
      t.equal(lines.filter((l) => l === `-A INPUT -i ${net.bridge} -j ${net.chain}-IN`).length, 1);
      t.same(
        lines.filter((l) => l.startsWith(`-A ${net.chain}-IN`) && l.includes('ACCEPT')),
        [`-A ${net.chain}-IN -d ${gw}/32 -p tcp -m tcp --dport ${port} -j ACCEPT`],
      );
      const health = await fetch(`http://${gw}:${port}/health`);
      t.equal(health.status, 200, 'the first proxy still serves after the second one closed');
    },
  );

  t.test('a proxy port held by another program stops start-up and shuts the door', async (t) => {
    // Some other program: it hangs up on whoever calls (reading first, or its socket never ends).
    const squatter = createServer((s) => {
      s.on('error', () => {});
      s.resume();
      s.end();
    });
    squatter.listen(0, gw);
    await once(squatter, 'listening');
    t.teardown(() => new Promise((resolve) => squatter.close(resolve)));
    const taken = (squatter.address() as AddressInfo).port;
    const squatted = loadConfig({ SERVICE_PROXY_PORT: String(taken) });
    const failed = await wireServiceProxy({
      config: squatted,
      docker,
      registry: new Registry(),
      logger: pino({ level: 'silent' }),
      network: net,
    }).catch((err) => err);
    t.type(failed, ConfigError);
    t.match(failed.message, /another program holds that port/);
    const { stdout } = await sh('iptables', ['-w', '-S', `${net.chain}-IN`]);
    t.notMatch(stdout, 'ACCEPT', 'nothing on the network reaches the other program');
    t.equal((await probe(net.name, { squatter: { tcp: [gw, taken] } })).squatter, REFUSED);
  });
}
