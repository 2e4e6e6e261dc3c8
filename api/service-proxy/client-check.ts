import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import ipaddr from 'ipaddr.js';

/** True when `address` (as a socket reports it, IPv4-mapped or not) lies in one of `cidrs`. */
export function addressIn(address: string | undefined, cidrs: readonly string[]): boolean {
  if (!address || !ipaddr.isValid(address)) return false;
  const ip = ipaddr.process(address);
  return cidrs.some((cidr) => {
    const range = ipaddr.parseCIDR(cidr);
    return range[0].kind() === ip.kind() && ip.match(range);
  });
}

/**
 * Answers 403 to any client outside `allowFrom`. The firewall lets only the service network's
 * containers in through that bridge, but the gateway is one of the host's addresses: a container
 * on another bridge, or a machine that routes to it, would otherwise reach a proxy that spends
 * the operator's AI keys without asking who calls. A TCP client cannot fake its address here:
 * the handshake's answer goes to the real owner.
 */
export default fp<{ allowFrom: readonly string[] }>(
  async (app: FastifyInstance, { allowFrom }) => {
    app.addHook('onRequest', async (request, reply) => {
      if (addressIn(request.socket.remoteAddress, allowFrom)) return;
      return reply
        .status(403)
        .send({ error: 'forbidden', message: 'The service proxy serves exec containers only.' });
    });
  },
  { name: 'service-proxy-client-check' },
);
