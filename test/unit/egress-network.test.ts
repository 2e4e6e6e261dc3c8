import type Docker from 'dockerode';
import ipaddr from 'ipaddr.js';
import t from 'tap';
import { AddressPolicy, refusedRanges } from '../../core/address-policy.ts';
import { AddressRefusedError } from '../../core/errors.ts';
import {
  allowCidrs,
  EGRESS_NETWORK,
  egressRules,
  ensureEgressNetwork,
  parseNameservers,
  removeEgressNetwork,
} from '../../runtimes/egress-network.ts';
import { fakeIptables } from '../helpers/fake-iptables.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

const R4 = '-j REJECT --reject-with icmp-admin-prohibited';
const R6 = '-j REJECT --reject-with icmp6-adm-prohibited';

t.test(
  'every refused range is refused by the HTTP jobs policy, at both ends, even with external allowed',
  async (t) => {
    const open = new AddressPolicy({ allowExternal: true, allowlist: [] });
    for (const kind of ['ipv4', 'ipv6'] as const) {
      for (const { cidr } of refusedRanges(kind)) {
        const [first, last] =
          kind === 'ipv4'
            ? [ipaddr.IPv4.networkAddressFromCIDR(cidr), ipaddr.IPv4.broadcastAddressFromCIDR(cidr)]
            : [ipaddr.IPv6.networkAddressFromCIDR(cidr), ipaddr.IPv6.parse(lastV6(cidr))];
        for (const ip of [first.toString(), last.toString()]) {
          t.throws(() => open.checkAddress(ip, ip), AddressRefusedError, `${ip} (${cidr})`);
        }
      }
    }
    for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111']) {
      const kind = ipaddr.parse(ip).kind();
      t.notOk(
        refusedRanges(kind).some(({ cidr }) => ipaddr.parse(ip).match(ipaddr.parseCIDR(cidr))),
        `${ip} is in no refused range`,
      );
      t.doesNotThrow(() => open.checkAddress(ip, ip));
    }
  },
);

t.test('the exact rules for a fixed allowlist', async (t) => {
  const v4 = egressRules({
    chain: 'DH',
    family: 'ipv4',
    allow: ['10.1.0.0/16', '192.168.5.7/32'],
    dns: ['10.255.255.53'],
  });
  const head4 = (c: string) => [
    `-A ${c} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    `-A ${c} -d 0.0.0.0/8 ${R4}`,
    `-A ${c} -d 255.255.255.255/32 ${R4}`,
    `-A ${c} -d 224.0.0.0/4 ${R4}`,
    `-A ${c} -d 10.1.0.0/16 -j RETURN`,
    `-A ${c} -d 192.168.5.7/32 -j RETURN`,
    `-A ${c} -d 10.255.255.53/32 -p udp -m udp --dport 53 -j RETURN`,
    `-A ${c} -d 10.255.255.53/32 -p tcp -m tcp --dport 53 -j RETURN`,
  ];
  t.same(v4, [
    ...head4('DH-FWD'),
    `-A DH-FWD -d 169.254.0.0/16 ${R4}`,
    `-A DH-FWD -d 127.0.0.0/8 ${R4}`,
    `-A DH-FWD -d 100.64.0.0/10 ${R4}`,
    `-A DH-FWD -d 10.0.0.0/8 ${R4}`,
    `-A DH-FWD -d 172.16.0.0/12 ${R4}`,
    `-A DH-FWD -d 192.168.0.0/16 ${R4}`,
    `-A DH-FWD -d 192.0.0.0/24 ${R4}`,
    `-A DH-FWD -d 192.0.2.0/24 ${R4}`,
    `-A DH-FWD -d 192.88.99.0/24 ${R4}`,
    `-A DH-FWD -d 198.18.0.0/15 ${R4}`,
    `-A DH-FWD -d 198.51.100.0/24 ${R4}`,
    `-A DH-FWD -d 203.0.113.0/24 ${R4}`,
    `-A DH-FWD -d 240.0.0.0/4 ${R4}`,
    `-A DH-FWD -d 192.175.48.0/24 ${R4}`,
    `-A DH-FWD -d 192.31.196.0/24 ${R4}`,
    `-A DH-FWD -d 192.52.193.0/24 ${R4}`,
    ...head4('DH-IN'),
    `-A DH-IN ${R4}`,
  ]);

  const v6 = egressRules({ chain: 'DH', family: 'ipv6', allow: ['fd00:1::/64'], dns: [] });
  const head6 = (c: string) => [
    `-A ${c} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    `-A ${c} -d ::/128 ${R6}`,
    `-A ${c} -d ff00::/8 ${R6}`,
    `-A ${c} -d fd00:1::/64 -j RETURN`,
  ];
  t.same(v6, [
    ...head6('DH-FWD'),
    ...[
      'fe80::/10',
      '::1/128',
      'fc00::/7',
      '::ffff:0:0/96',
      'fec0::/10',
      '100::/64',
      '::ffff:0:0:0/96',
      '64:ff9b::/96',
      '64:ff9b:1::/48',
      '2002::/16',
      '2001::/32',
      '2001:2::/48',
      '2001:3::/32',
      '2001:4:112::/48',
      '2620:4f:8000::/48',
      '2001:10::/28',
      '2001:20::/28',
      '2001:30::/28',
      '5f00::/16',
      '2001::/23',
      '2001:db8::/32',
      '3fff::/20',
    ].map((cidr) => `-A DH-FWD -d ${cidr} ${R6}`),
    ...head6('DH-IN'),
    `-A DH-IN ${R6}`,
  ]);
  t.ok(
    v6.some((r) => r === `-A DH-FWD -d fc00::/7 ${R6}`),
    'fd00:ec2::254, the AWS IPv6 metadata address, is in the refused ULA range',
  );
});

t.test('allowlist entries become canonical CIDRs; host names resolve once, or are reported', async (t) => {
  const resolve = async (host: string) => (host === 'db.internal' ? ['10.9.8.7', 'fd00::7'] : []);
  t.same(
    await allowCidrs(['10.1.2.3/16', '192.168.1.1', 'db.internal', 'gone.internal', 'FD00::1/8'], resolve),
    {
      cidrs: ['10.1.0.0/16', '192.168.1.1/32', '10.9.8.7/32', 'fd00::7/128', 'fd00::/8'],
      unresolved: ['gone.internal'],
    },
  );
});

t.test('nameservers from resolv.conf, loopback ones left out', async (t) => {
  const text =
    '# generated\nnameserver 10.255.255.53\nnameserver 127.0.0.53\nnameserver ::1\nsearch x\nnameserver fd00::53\n';
  t.same(parseNameservers(text), ['10.255.255.53', 'fd00::53']);
});

/** Just enough of dockerode for the network calls. */
function fakeDocker(network?: { Driver: string; EnableIPv6?: boolean; Options?: Record<string, string> }) {
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
    createNetwork: async (opts: { Options: Record<string, string> }) => {
      state.created.push(opts);
      state.network = { Driver: 'bridge', Options: opts.Options };
    },
  } as unknown as Docker;
  return { docker, state };
}

const restore4 = (rules: string[]) =>
  `iptables-restore -w --noflush <<*filter\n:DOCKHAND-EGRESS-FWD - [0:0]\n:DOCKHAND-EGRESS-IN - [0:0]\n${rules.join('\n')}\nCOMMIT\n`;

t.test(
  'ensure: rules first, then the network; a second run refills the chains and adds no jump',
  async (t) => {
    const { docker, state } = fakeDocker();
    const { calls, run } = fakeIptables(['DOCKER-USER']);
    const options = { docker, allow: ['10.1.0.0/16'], dns: ['10.255.255.53'], run };
    const rules = egressRules({
      chain: 'DOCKHAND-EGRESS',
      family: 'ipv4',
      allow: ['10.1.0.0/16'],
      dns: ['10.255.255.53'],
    });

    const first = await ensureEgressNetwork(options);
    t.same(first, { name: EGRESS_NETWORK, bridge: 'dh-egress0', ipv6: false, unresolved: [] });
    t.same(calls, [
      restore4(rules),
      'iptables -w -S DOCKER-USER',
      'iptables -w -C DOCKER-USER -i dh-egress0 -j DOCKHAND-EGRESS-FWD',
      'iptables -w -I DOCKER-USER -i dh-egress0 -j DOCKHAND-EGRESS-FWD',
      'iptables -w -C INPUT -i dh-egress0 -j DOCKHAND-EGRESS-IN',
      'iptables -w -I INPUT -i dh-egress0 -j DOCKHAND-EGRESS-IN',
    ]);
    t.same(state.created, [
      {
        Name: EGRESS_NETWORK,
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: { dockhand: '1' },
        Options: {
          'com.docker.network.bridge.name': 'dh-egress0',
          'com.docker.network.bridge.enable_icc': 'false',
        },
      },
    ]);

    calls.length = 0;
    await ensureEgressNetwork(options);
    t.same(calls, [
      restore4(rules),
      'iptables -w -S DOCKER-USER',
      'iptables -w -C DOCKER-USER -i dh-egress0 -j DOCKHAND-EGRESS-FWD',
      'iptables -w -C INPUT -i dh-egress0 -j DOCKHAND-EGRESS-IN',
    ]);
    t.equal(state.created.length, 1, 'the network is made once');
  },
);

t.test(
  'ensure: no DOCKER-USER means the top of FORWARD; a network with IPv6 gets ip6tables too',
  async (t) => {
    const { docker } = fakeDocker({
      Driver: 'bridge',
      EnableIPv6: true,
      Options: { 'com.docker.network.bridge.name': 'dh-egress0' },
    });
    const { calls, run } = fakeIptables([]);
    const result = await ensureEgressNetwork({ docker, allow: [], dns: [], run });
    t.equal(result.ipv6, true);
    t.same(
      calls.map((c) => c.split(' <<')[0]),
      [
        'iptables-restore -w --noflush',
        'iptables -w -S DOCKER-USER',
        'iptables -w -C FORWARD -i dh-egress0 -j DOCKHAND-EGRESS-FWD',
        'iptables -w -I FORWARD -i dh-egress0 -j DOCKHAND-EGRESS-FWD',
        'iptables -w -C INPUT -i dh-egress0 -j DOCKHAND-EGRESS-IN',
        'iptables -w -I INPUT -i dh-egress0 -j DOCKHAND-EGRESS-IN',
        'ip6tables-restore -w --noflush',
        'ip6tables -w -S DOCKER-USER',
        'ip6tables -w -C FORWARD -i dh-egress0 -j DOCKHAND-EGRESS-FWD',
        'ip6tables -w -I FORWARD -i dh-egress0 -j DOCKHAND-EGRESS-FWD',
        'ip6tables -w -C INPUT -i dh-egress0 -j DOCKHAND-EGRESS-IN',
        'ip6tables -w -I INPUT -i dh-egress0 -j DOCKHAND-EGRESS-IN',
      ],
    );
    t.match(calls[6], /-A DOCKHAND-EGRESS-FWD -d fc00::\/7 -j REJECT --reject-with icmp6-adm-prohibited\n/);
  },
);

t.test('ensure fails closed: no network is made, and one left from before is removed', async (t) => {
  const fresh = fakeDocker();
  await t.rejects(
    ensureEgressNetwork({ docker: fresh.docker, allow: [], dns: [], run: fakeIptables([], 'restore').run }),
    /Permission denied/,
  );
  t.same(fresh.state.created, []);

  const old = fakeDocker({ Driver: 'bridge', Options: { 'com.docker.network.bridge.name': 'dh-egress0' } });
  await t.rejects(
    ensureEgressNetwork({ docker: old.docker, allow: [], dns: [], run: fakeIptables([], 'restore').run }),
    /Permission denied/,
  );
  t.equal(old.state.removed, 1);
});

t.test('ensure refuses a network of that name on another interface', async (t) => {
  const { docker } = fakeDocker({ Driver: 'bridge', Options: {} });
  const { calls, run } = fakeIptables(['DOCKER-USER']);
  await t.rejects(
    ensureEgressNetwork({ docker, allow: [], dns: [], run }),
    /docker network rm dockhand-egress/,
  );
  t.same(calls, []);
});

t.test('remove: network, every jump, both chains; a second remove is harmless', async (t) => {
  const { docker, state } = fakeDocker();
  const { calls, run } = fakeIptables(['DOCKER-USER']);
  await ensureEgressNetwork({ docker, allow: [], dns: [], run, chain: 'DHT', bridge: 'dht0', name: 'n' });
  calls.length = 0;
  await removeEgressNetwork({ docker, run, chain: 'DHT', bridge: 'dht0', name: 'n' });
  t.equal(state.network, undefined);
  const iptables = calls.filter((c) => c.startsWith('iptables '));
  t.same(iptables, [
    'iptables -w -D DOCKER-USER -i dht0 -j DHT-FWD',
    'iptables -w -D DOCKER-USER -i dht0 -j DHT-FWD',
    'iptables -w -D FORWARD -i dht0 -j DHT-FWD',
    'iptables -w -D INPUT -i dht0 -j DHT-IN',
    'iptables -w -D INPUT -i dht0 -j DHT-IN',
    'iptables -w -F DHT-FWD',
    'iptables -w -X DHT-FWD',
    'iptables -w -F DHT-IN',
    'iptables -w -X DHT-IN',
  ]);
  t.ok(
    calls.some((c) => c === 'ip6tables -w -X DHT-IN'),
    'IPv6 chains go too, if there were any',
  );
  await t.resolves(removeEgressNetwork({ docker, run, chain: 'DHT', bridge: 'dht0', name: 'n' }));
});

function lastV6(cidr: string): string {
  const [address, bits] = ipaddr.parseCIDR(cidr);
  const bytes = address.toByteArray();
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] = (bytes[i] as number) | (0xff >> keep);
  }
  return ipaddr.fromByteArray(bytes).toString();
}
