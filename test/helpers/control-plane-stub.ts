import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';

export interface StubRequest {
  route: 'register' | 'heartbeat' | 'other';
  path: string;
  authorization: string | undefined;
  /** The node id in a heartbeat's path. */
  nodeId?: string;
  body: Record<string, unknown>;
}

export interface Desired {
  eligible: boolean;
  drain: boolean;
}

/**
 * The control plane's node API as far as an agent sees it (POST /api/v1/nodes/register, POST
 * /api/v1/nodes/:id/heartbeat), recording every request; the real one lives on another branch.
 * Registration needs `registrationAuth` when given; a heartbeat needs the token its node got
 * (401 otherwise) and a node the stub knows (404 after forget()).
 */
export async function startControlPlaneStub(
  t: Test,
  options: { registrationAuth?: string; heartbeatInterval?: number } = {},
) {
  const requests: StubRequest[] = [];
  const nodes = new Map<string, string>(); // id → token
  let desired: Desired = { eligible: true, drain: false };
  let next = 0;
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk) => {
      raw += chunk;
    });
    req.on('end', () => {
      const path = req.url ?? '/';
      const heartbeat = /^\/api\/v1\/nodes\/([^/]+)\/heartbeat$/.exec(path);
      const route = path === '/api/v1/nodes/register' ? 'register' : heartbeat ? 'heartbeat' : 'other';
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw || '{}');
      } catch {
        // recorded as {}
      }
      const nodeId = heartbeat ? decodeURIComponent(heartbeat[1] as string) : undefined;
      requests.push({ route, path, authorization: req.headers.authorization, nodeId, body });
      const answer = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.method !== 'POST' || route === 'other')
        return answer(404, { error: 'not_found', message: 'No route.' });
      if (route === 'register') {
        if (options.registrationAuth && req.headers.authorization !== options.registrationAuth)
          return answer(401, { error: 'unauthorized', message: 'A registration token is needed.' });
        next += 1;
        const id = `node-${next}`;
        nodes.set(id, `token-${next}`);
        return answer(201, {
          node_id: id,
          node_token: `token-${next}`,
          ...(options.heartbeatInterval ? { heartbeat_interval: options.heartbeatInterval } : {}),
        });
      }
      const token = nodes.get(nodeId as string);
      if (token === undefined) return answer(404, { error: 'not_found', message: `No node ${nodeId}.` });
      if (req.headers.authorization !== `Bearer ${token}`)
        return answer(401, { error: 'unauthorized', message: 'Wrong node token.' });
      return answer(200, {
        status: 'ok',
        node_id: nodeId,
        desired,
        ...(options.heartbeatInterval ? { heartbeat_interval: options.heartbeatInterval } : {}),
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t.teardown(close);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    heartbeats: (nodeId?: string) =>
      requests.filter((r) => r.route === 'heartbeat' && (nodeId === undefined || r.nodeId === nodeId)),
    registrations: () => requests.filter((r) => r.route === 'register'),
    /** What the next heartbeat answers say. */
    setDesired(value: Desired) {
      desired = value;
    },
    /** The control plane loses the node: its heartbeats get 404. */
    forget(nodeId: string) {
      nodes.delete(nodeId);
    },
    close,
  };
}
