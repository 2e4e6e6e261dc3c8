import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { type Static, Type } from 'typebox';
import { NotFoundError } from '../../core/errors.ts';
import type { NodeRecord, NodeStore } from '../nodes/node-store.ts';
import { commonErrors, ErrorResponse } from '../schemas/common.ts';
import {
  DesiredAnswer,
  EligibilityBody,
  Heartbeat,
  HeartbeatAnswer,
  NodeList,
  NodeParams,
  NodeRegistered,
  NodeRegistration,
  NodeView,
} from '../schemas/nodes.ts';

/** Agents send a few KB; the gateway's default body limit (6 MB) is for function payloads. */
export const NODE_BODY_LIMIT_BYTES = 64 * 1024;

/** A node as GET shows it: never its token digest (the record holds none either). */
export function describeNode(node: NodeRecord, store: NodeStore, at = store.now()): Static<typeof NodeView> {
  return {
    node_id: node.id,
    name: node.name,
    ip: node.ip,
    status: store.status(node, at),
    capabilities: node.capabilities,
    ...(node.metrics ? { metrics: node.metrics } : {}),
    ...(node.reported ? { reported_state: node.reported } : {}),
    desired: node.desired,
    registered_at: new Date(node.registeredAt).toISOString(),
    last_seen: new Date(node.lastSeen).toISOString(),
    heartbeat_age_seconds: Math.max(0, (at - node.lastSeen) / 1000),
  };
}

const unknownNode = (id: string) => new NotFoundError(`No node ${id}.`);

/** The control plane of the node agents: registration, heartbeats, and the operator's view and wishes. */
export default async function nodeRoutes(base: FastifyInstance, deps: { store: NodeStore }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const { store } = deps;
  const tags = ['nodes'];
  const errors = { 404: ErrorResponse, ...commonErrors };

  app.post(
    '/api/v1/nodes/register',
    {
      config: { auth: 'node-registration' },
      bodyLimit: NODE_BODY_LIMIT_BYTES,
      schema: {
        tags,
        summary: 'Register a node (or the same name again): answers its node_id and a new node_token',
        description:
          'Needs an API key or NODE_REGISTRATION_TOKEN, as a bearer token or as the password of Basic auth (credentials in CONTROL_PLANE_URL). Always 200, as the MIaaS control plane answered.',
        security: [{ bearer: [] }, { registrationBasic: [] }],
        body: NodeRegistration,
        response: { 200: NodeRegistered, 403: ErrorResponse, 409: ErrorResponse, ...commonErrors },
      },
    },
    async (request) => {
      const { name, ip, capabilities } = request.body;
      const { nodeId, nodeToken, created } = await store.register({ name, ip, capabilities });
      request.log.info(
        { node: nodeId, name, created },
        created ? 'node registered' : 'node registered again',
      );
      return { node_id: nodeId, node_token: nodeToken, heartbeat_interval: store.heartbeatIntervalSeconds };
    },
  );

  app.post(
    '/api/v1/nodes/:id/heartbeat',
    {
      config: { auth: 'node-token' },
      bodyLimit: NODE_BODY_LIMIT_BYTES,
      schema: {
        tags,
        summary: 'A node reports its metrics (and state) and learns what is wanted of it',
        description:
          'Authorization: Bearer <node_token>. 404 means the node is unknown (deleted, or forgotten after a day offline): register again.',
        security: [{ nodeToken: [] }],
        params: NodeParams,
        body: Heartbeat,
        response: { 200: HeartbeatAnswer, ...errors },
      },
    },
    async (request) => {
      const { id } = request.params;
      const desired = await store.heartbeat(id, request.body);
      if (!desired) throw new NotFoundError(`No node ${id}; register again.`);
      return {
        status: 'ok' as const,
        node_id: id,
        desired,
        heartbeat_interval: store.heartbeatIntervalSeconds,
      };
    },
  );

  app.get(
    '/api/v1/nodes',
    {
      schema: {
        tags,
        summary: 'Every node with its status, capabilities and last metrics',
        response: { 200: NodeList, ...commonErrors },
      },
    },
    async () => {
      const nodes = await store.list();
      const at = store.now();
      return { nodes: nodes.map((node) => describeNode(node, store, at)) };
    },
  );

  app.get(
    '/api/v1/nodes/:id',
    {
      schema: {
        tags,
        summary: 'One node with its status, capabilities and last metrics',
        params: NodeParams,
        response: { 200: NodeView, ...errors },
      },
    },
    async (request) => {
      const node = await store.get(request.params.id);
      if (!node) throw unknownNode(request.params.id);
      return describeNode(node, store);
    },
  );

  app.delete(
    '/api/v1/nodes/:id',
    {
      schema: {
        tags,
        summary: 'Forget a node: its token stops working; a running agent registers again',
        params: NodeParams,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      if (!(await store.remove(request.params.id))) throw unknownNode(request.params.id);
      request.log.info({ node: request.params.id }, 'node deleted');
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/v1/nodes/:id/drain',
    {
      schema: {
        tags,
        summary: 'Drain a node: it finishes its jobs and takes no more (status draining, then drained)',
        params: NodeParams,
        response: { 202: DesiredAnswer, ...errors },
      },
    },
    async (request, reply) => {
      const desired = await store.setDesired(request.params.id, { drain: true });
      if (!desired) throw unknownNode(request.params.id);
      request.log.info({ node: request.params.id }, 'node drain asked');
      return reply.status(202).send({ node_id: request.params.id, desired });
    },
  );

  app.post(
    '/api/v1/nodes/:id/eligibility',
    {
      schema: {
        tags,
        summary: 'Rule a node in or out of new work; eligible: true also ends a drain',
        params: NodeParams,
        body: EligibilityBody,
        response: { 200: DesiredAnswer, ...errors },
      },
    },
    async (request) => {
      const { eligible } = request.body;
      const desired = await store.setDesired(request.params.id, { eligible });
      if (!desired) throw unknownNode(request.params.id);
      request.log.info({ node: request.params.id, eligible }, 'node eligibility set');
      return { node_id: request.params.id, desired };
    },
  );
}
