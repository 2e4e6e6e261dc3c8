import type Docker from 'dockerode';
import t from 'tap';
import { addressIn } from '../../api/service-proxy/client-check.ts';
import {
  ensureServiceNetwork,
  removeServiceNetwork,
  SERVICE_NETWORK,
  serviceEnv,
  serviceRules,
} from '../../runtimes/service-network.ts';
import { fakeIptables } from '../helpers/fake-iptables.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

const R4 = '-j REJECT --reject-with icmp-admin-prohibited';
const R6 = '-j REJECT --reject-with icmp6-adm-prohibited';
const GW = '172.30.0.1';

t.test('the rules: nothing forwarded, on the host only the proxy port on the gateway', async (t) => {
  t.same(serviceRules({ chain: 'S', family: 'ipv4', gateway: GW, port: 9000 }), [
    `-A S-FWD ${R4}`,
    '-A S-IN -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
    `-A S-IN -d ${GW}/32 -p tcp -m tcp --dport 9000 -j ACCEPT`,
    `-A S-IN ${R4}`,
  ]);
  t.same(
    serviceRules({ chain: 'S', family: 'ipv4', gateway: undefined, port: 9000 }),
    [`-A S-FWD ${R4}`, '-A S-IN -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN', `-A S-IN ${R4}`],
    'no gateway yet: shut',
  );
  t.same(serviceRules({ chain: 'S', family: 'ipv6', gateway: undefined, port: 9000 }), [
    `-A S-FWD ${R6}`,
    '-A S-IN -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
    `-A S-IN ${R6}`,
  ]);
});

t.test("the environment follows service_access, with the Exec Agent's URLs", async (t) => {
  const proxy = `http://${GW}:9000`;
  t.same(serviceEnv(proxy, []), {});
  t.same(serviceEnv(proxy, ['data']), { SERVICE_PROXY_URL: proxy, DATA_SERVICE_URL: `${proxy}/data` });
  t.same(serviceEnv(proxy, ['ai']), { SERVICE_PROXY_URL: proxy, AI_SERVICE_URL: `${proxy}/ai` });
  t.same(serviceEnv(proxy, ['data', 'ai']), {
    SERVICE_PROXY_URL: proxy,
    DATA_SERVICE_URL: `${proxy}/data`,
    AI_SERVICE_URL: `${proxy}/ai`,
  });
});

interface FakeNetwork {
  Driver: string;
  Internal?: boolean;
  Options?: Record<string, string>;
  IPAM?: { Config: Array<{ Subnet?: string; Gateway?: string }> };
}

/** Just enough of dockerode: a created network gets the gateway Docker would give it. */
function fakeDocker(network?: FakeNetwork, gateway: string | null = GW) {
  const state = { network, created: [] as unknown[], removed: 0 };
  const docker = {
    getNetwork: () => ({
      inspect: async () => {
        if (!state.network) throw Object.assign(new Error('no such network'), { statusCode: 404 });
        return state.network;
      },
      remove: async () => {
        if (!state.network) throw Object.assign(new Error('no such network'), { statusCode: 404 });
        state.network = undefined;
        state.removed++;
      },
    }),
    createNetwork: async (opts: { Internal?: boolean; Options: Record<string, string> }) => {
      state.created.push(opts);
      state.network = {
        Driver: 'bridge',
        Internal: opts.Internal,
        Options: opts.Options,
        IPAM: { Config: [{ Subnet: '172.30.0.0/16', Gateway: gateway ?? undefined }] },
      };
    },
  } as unknown as Docker;
  return { docker, state };
}

const restore = (rules: string[]) =>
  `iptables-restore -w --noflush <<*filter\n:DOCKHAND-SERVICES-FWD - [0:0]\n:DOCKHAND-SERVICES-IN - [0:0]\n${rules.join('\n')}\nCOMMIT\n`;
const rules = (gateway: string | undefined) =>
  serviceRules({ chain: 'DOCKHAND-SERVICES', family: 'ipv4', gateway, port: 9000 });

t.test('ensure: shut rules first, then an internal network, then the door to the proxy', async (t) => {
  const { docker, state } = fakeDocker();
  const { calls, run } = fakeIptables(['DOCKER-USER']);
  const network = await ensureServiceNetwork({ docker, port: 9000, run });
  t.same(network, {
    network: SERVICE_NETWORK,
    bridge: 'dh-svc0',
    gatewayIp: GW,
    subnet: '172.30.0.0/16',
    proxyUrl: `http://${GW}:9000`,
    extraHosts: [`host.docker.internal:${GW}`],
  });
  t.same(calls, [
    restore(rules(undefined)),
    'iptables -w -S DOCKER-USER',
    'iptables -w -C DOCKER-USER -i dh-svc0 -j DOCKHAND-SERVICES-FWD',
    'iptables -w -I DOCKER-USER -i dh-svc0 -j DOCKHAND-SERVICES-FWD',
    'iptables -w -C INPUT -i dh-svc0 -j DOCKHAND-SERVICES-IN',
    'iptables -w -I INPUT -i dh-svc0 -j DOCKHAND-SERVICES-IN',
    restore(rules(GW)),
  ]);
  t.same(state.created, [
    {
      Name: SERVICE_NETWORK,
      Driver: 'bridge',
      CheckDuplicate: true,
      Internal: true,
      Labels: { dockhand: '1' },
      Options: {
        'com.docker.network.bridge.name': 'dh-svc0',
        'com.docker.network.bridge.enable_icc': 'false',
      },
    },
  ]);

  calls.length = 0;
  await ensureServiceNetwork({ docker, port: 9100, run });
  t.same(
    calls,
    [
      restore(serviceRules({ chain: 'DOCKHAND-SERVICES', family: 'ipv4', gateway: GW, port: 9100 })),
      'iptables -w -S DOCKER-USER',
      'iptables -w -C DOCKER-USER -i dh-svc0 -j DOCKHAND-SERVICES-FWD',
      'iptables -w -C INPUT -i dh-svc0 -j DOCKHAND-SERVICES-IN',
    ],
    'an existing network: one refill (a new port included), no second jump',
  );
  t.equal(state.created.length, 1);

  calls.length = 0;
  await ensureServiceNetwork({ docker, port: 9100, run, open: false });
  t.same(calls[0], restore(rules(undefined)), 'open: false writes the rules shut');
});

t.test('ensure refuses a network of that name that is not internal, or has no gateway', async (t) => {
  const plain = fakeDocker({ Driver: 'bridge', Options: { 'com.docker.network.bridge.name': 'dh-svc0' } });
  const { calls, run } = fakeIptables(['DOCKER-USER']);
  await t.rejects(
    ensureServiceNetwork({ docker: plain.docker, port: 9000, run }),
    /is not an internal bridge on interface dh-svc0.*docker network rm dockhand-services/,
  );
  t.same(calls, [], 'no rule written for it');

  const noGateway = fakeDocker(undefined, null);
  await t.rejects(
    ensureServiceNetwork({ docker: noGateway.docker, port: 9000, run: fakeIptables(['DOCKER-USER']).run }),
    /has no IPv4 gateway and subnet/,
  );
});

t.test('ensure fails closed: rules that cannot be written make no network', async (t) => {
  const { docker, state } = fakeDocker();
  await t.rejects(
    ensureServiceNetwork({ docker, port: 9000, run: fakeIptables([], 'restore').run }),
    /Permission denied/,
  );
  t.same(state.created, []);
});

t.test('remove: network, every jump, both chains', async (t) => {
  const { docker, state } = fakeDocker();
  const { calls, run } = fakeIptables(['DOCKER-USER']);
  await ensureServiceNetwork({ docker, port: 9000, run });
  calls.length = 0;
  await removeServiceNetwork({ docker, run });
  t.equal(state.network, undefined);
  t.same(
    calls.filter((c) => c.startsWith('iptables ')),
    [
      'iptables -w -D DOCKER-USER -i dh-svc0 -j DOCKHAND-SERVICES-FWD',
      'iptables -w -D DOCKER-USER -i dh-svc0 -j DOCKHAND-SERVICES-FWD',
      'iptables -w -D FORWARD -i dh-svc0 -j DOCKHAND-SERVICES-FWD',
      'iptables -w -D INPUT -i dh-svc0 -j DOCKHAND-SERVICES-IN',
      'iptables -w -D INPUT -i dh-svc0 -j DOCKHAND-SERVICES-IN',
      'iptables -w -F DOCKHAND-SERVICES-FWD',
      'iptables -w -X DOCKHAND-SERVICES-FWD',
      'iptables -w -F DOCKHAND-SERVICES-IN',
      'iptables -w -X DOCKHAND-SERVICES-IN',
    ],
  );
});

t.test(
  "the proxy's clients: the network's subnet and loopback, however the socket spells them",
  async (t) => {
    const allow = ['172.30.0.0/16', '127.0.0.0/8', '::1/128'];
    t.ok(addressIn('172.30.0.5', allow));
    t.ok(addressIn('::ffff:172.30.0.5', allow), 'IPv4-mapped, as a dual-stack socket reports it');
    t.ok(addressIn('127.0.0.1', allow));
    t.ok(addressIn('::1', allow));
    for (const outside of ['172.17.0.2', '192.0.2.2', '::ffff:10.0.0.1', 'fe80::1', '', undefined, 'x']) {
      t.notOk(addressIn(outside, allow), String(outside));
    }
  },
);
