import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Redis } from 'ioredis';
import { type Static, Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { ConflictError, DockhandError, ValidationError } from '../../core/errors.ts';
import {
  type DesiredState,
  type Heartbeat,
  NODE_NAME_PATTERN,
  NodeCapabilities,
  NodeMetrics,
  type NodeStatus,
  ReportedState,
} from '../schemas/nodes.ts';

export type Capabilities = Static<typeof NodeCapabilities>;
export type Metrics = Static<typeof NodeMetrics>;
export type Reported = Static<typeof ReportedState>;
export type Desired = Static<typeof DesiredState>;
export type NodeStatusName = Static<typeof NodeStatus>;

export interface NodeRecord {
  id: string;
  name: string;
  ip: string;
  capabilities: Capabilities;
  /** Epoch ms of its last registration. */
  registeredAt: number;
  /** Epoch ms of its last heartbeat or registration. */
  lastSeen: number;
  /** The last heartbeat's metrics; none before the first heartbeat after a registration. */
  metrics?: Metrics;
  /** The state the node last reported, if its agent reports one (the MIaaS agent does not). */
  reported?: Reported;
  desired: Desired;
}

/** A node is offline once this many heartbeat intervals have passed without one. */
export const OFFLINE_AFTER_INTERVALS = 3;

/**
 * The status GET /api/v1/nodes shows: the operator's wish (desired) and the node's report
 * combined. A silent node is offline whatever else holds; a drain shows until the node says it
 * has no work left (drained); a node the operator or the node itself ruled out is ineligible.
 */
export function nodeStatus(
  node: Pick<NodeRecord, 'lastSeen' | 'desired' | 'reported'>,
  nowMs: number,
  heartbeatIntervalSeconds: number,
): NodeStatusName {
  if (nowMs - node.lastSeen > OFFLINE_AFTER_INTERVALS * heartbeatIntervalSeconds * 1000) return 'offline';
  if (node.desired.drain || node.reported === 'draining' || node.reported === 'drained')
    return node.reported === 'drained' ? 'drained' : 'draining';
  if (!node.desired.eligible || node.reported === 'ineligible') return 'ineligible';
  return 'online';
}

/**
 * A node token carries 256 random bits, so a fast hash is enough: nobody can search that space
 * for a preimage, and a slow password hash (scrypt, bcrypt) would only cost CPU on every
 * heartbeat. Storing the digest means a Redis dump, replica or MONITOR yields no usable token.
 */
const hashToken = (token: string) => createHash('sha256').update(token).digest();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TOKEN_HASH = /^[0-9a-f]{64}$/;

/** A stored node, checked field by field before use: Redis is not a trust boundary. */
const StoredNode = Type.Object({
  name: Type.String({ pattern: NODE_NAME_PATTERN }),
  ip: Type.Refine(Type.String(), (ip) => isIP(ip) !== 0),
  capabilities: NodeCapabilities,
  token: Type.String({ pattern: TOKEN_HASH.source }),
  registered_at: Type.Integer({ minimum: 0 }),
  last_seen: Type.Integer({ minimum: 0 }),
  metrics: Type.Optional(NodeMetrics),
  reported: Type.Optional(ReportedState),
});
const checkStored = Compile(StoredNode);
const checkCapabilities = Compile(NodeCapabilities);
const checkMetrics = Compile(NodeMetrics);

function parseJson(raw: string | undefined): unknown {
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return null; // present but unreadable: fails the check rather than passing as absent
  }
}

/**
 * Desired state as stored ('1'/'0' per field). Anything else was not written by Dockhand and
 * reads as a drain: a node never takes work because of a value nobody set. POST …/eligibility
 * rewrites both fields.
 */
function parseDesired(eligible: unknown, drain: unknown): Desired {
  const valid = (v: unknown) => v === '0' || v === '1';
  if (!valid(eligible) || !valid(drain)) return { eligible: false, drain: true };
  return { eligible: eligible === '1', drain: drain === '1' };
}

function parseNode(id: string, hash: Record<string, string>): NodeRecord | undefined {
  const stored = {
    name: hash.name,
    ip: hash.ip,
    capabilities: parseJson(hash.capabilities),
    token: hash.token,
    registered_at: hash.registered_at === undefined ? undefined : Number(hash.registered_at),
    last_seen: hash.last_seen === undefined ? undefined : Number(hash.last_seen),
    ...(hash.metrics === undefined ? {} : { metrics: parseJson(hash.metrics) }),
    ...(hash.reported === undefined ? {} : { reported: hash.reported }),
  };
  if (!checkStored.Check(stored)) return undefined;
  const node = stored as Static<typeof StoredNode>;
  return {
    id,
    name: node.name,
    ip: node.ip,
    capabilities: node.capabilities,
    registeredAt: node.registered_at,
    lastSeen: node.last_seen,
    ...(node.metrics ? { metrics: node.metrics } : {}),
    ...(node.reported ? { reported: node.reported } : {}),
    desired: parseDesired(hash.eligible, hash.drain),
  };
}

/** Only the fields Dockhand knows: an agent's other fields are accepted by the route, not kept. */
function pickMetrics(report: Static<typeof Heartbeat>): Metrics {
  const metrics: Metrics = {
    cpu_usage: report.cpu_usage,
    mem_usage: report.mem_usage,
    disk_free_mb: report.disk_free_mb,
    running_containers: report.running_containers ?? [],
  };
  if (report.pool) metrics.pool = { idle: report.pool.idle, busy: report.pool.busy };
  if (report.active_jobs) metrics.active_jobs = report.active_jobs;
  if (report.gpus) metrics.gpus = report.gpus;
  return metrics;
}

// A name already known is the same node registering again (the MIaaS agent re-registers
// whenever a heartbeat fails): it keeps its id and the operator's desired state, and gets a new
// token, so whatever token it had before stops working. A name held by a node that is online
// at another address is refused: two machines sharing a name would otherwise take the token
// from each other at every heartbeat. New nodes are refused past the limit.
const REGISTER = `
local names, index = KEYS[1], KEYS[2]
local prefix, name, newId, token, ip, caps = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now, onlineSince, max = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local id = redis.call('HGET', names, name)
if id then
  local key = prefix .. id
  if redis.call('EXISTS', key) == 1 then
    local seen = tonumber(redis.call('HGET', key, 'last_seen'))
    if redis.call('HGET', key, 'ip') ~= ip and seen and seen >= onlineSince then
      return {'conflict', id}
    end
    redis.call('HDEL', key, 'metrics', 'reported')
    redis.call('HSET', key, 'name', name, 'ip', ip, 'capabilities', caps, 'token', token,
      'registered_at', now, 'last_seen', now)
    redis.call('ZADD', index, now, id)
    return {'renewed', id}
  end
end
if redis.call('ZCARD', index) >= max then return {'full', ''} end
local key = prefix .. newId
redis.call('HSET', key, 'name', name, 'ip', ip, 'capabilities', caps, 'token', token,
  'registered_at', now, 'last_seen', now, 'eligible', '1', 'drain', '0')
redis.call('HSET', names, name, newId)
redis.call('ZADD', index, now, newId)
return {'created', newId}`;

// Never recreates a node deleted meanwhile; answers its desired state.
const HEARTBEAT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[2], 'metrics', ARGV[3])
if ARGV[4] == '' then redis.call('HDEL', KEYS[1], 'reported') else redis.call('HSET', KEYS[1], 'reported', ARGV[4]) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return redis.call('HMGET', KEYS[1], 'eligible', 'drain')`;

const SET_DESIRED = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], unpack(ARGV))
return redis.call('HMGET', KEYS[1], 'eligible', 'drain')`;

const REMOVE = `
local name = redis.call('HGET', KEYS[1], 'name')
if name and redis.call('HGET', KEYS[2], name) == ARGV[1] then redis.call('HDEL', KEYS[2], name) end
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('DEL', KEYS[1])`;

// Nodes silent since the cutoff are forgotten, except those an operator drained or ruled
// ineligible: that wish must outlive a long maintenance, or the node would come back as new
// and eligible. Index entries without a record (deleted by hand) go too.
const PRUNE = `
local index, names, prefix = KEYS[1], KEYS[2], ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local forgotten = 0
for _, id in ipairs(ids) do
  local key = prefix .. id
  if redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', index, id)
  elseif redis.call('HGET', key, 'drain') ~= '1' and redis.call('HGET', key, 'eligible') ~= '0' then
    local name = redis.call('HGET', key, 'name')
    if name and redis.call('HGET', names, name) == id then redis.call('HDEL', names, name) end
    redis.call('DEL', key)
    redis.call('ZREM', index, id)
    forgotten = forgotten + 1
  end
end
return forgotten`;

export interface NodeStoreOptions {
  /** Shared by every gateway: any replica answers for any node, and nodes outlive a restart. */
  redis: Redis;
  prefix: string;
  /** HEARTBEAT_INTERVAL: what agents are told, and what "offline" is counted in. */
  heartbeatIntervalSeconds: number;
  /** The clock registrations and heartbeats are stamped with and statuses computed by. Default Date.now. */
  now?: () => number;
  /** Registrations of new nodes beyond this are refused (409). Default 1000. */
  maxNodes?: number;
  /** A node silent this long is forgotten, unless drained or ineligible. Default 24 hours. */
  forgetAfterMs?: number;
}

export interface Registration {
  name: string;
  ip: string;
  capabilities: Capabilities;
}

/**
 * The control plane's node registry, all in Redis under `<prefix>:nodes:`: a hash per node,
 * the names (name → id) and an index sorted by last heartbeat. Every write that must see the
 * current record is one Lua script, so gateways never interleave half-updates.
 */
export function createNodeStore(options: NodeStoreOptions) {
  const { redis } = options;
  const now = options.now ?? Date.now;
  const maxNodes = options.maxNodes ?? 1000;
  const forgetAfterMs = options.forgetAfterMs ?? 24 * 60 * 60 * 1000;
  const offlineAfterMs = OFFLINE_AFTER_INTERVALS * options.heartbeatIntervalSeconds * 1000;
  const base = `${options.prefix}:nodes`;
  const nodePrefix = `${base}:node:`;
  const names = `${base}:names`;
  const index = `${base}:index`;
  const nodeKey = (id: string) => `${nodePrefix}${id}`;

  const desiredFrom = (reply: unknown): Desired | undefined => {
    if (!Array.isArray(reply)) return undefined;
    return parseDesired(reply[0], reply[1]);
  };
  const prune = (at: number) => redis.eval(PRUNE, 2, index, names, nodePrefix, at - forgetAfterMs, maxNodes);

  return {
    heartbeatIntervalSeconds: options.heartbeatIntervalSeconds,
    maxNodes,
    now,

    status(node: NodeRecord, at = now()): NodeStatusName {
      return nodeStatus(node, at, options.heartbeatIntervalSeconds);
    },

    /** Registers a node, or the same name again; answers its id and a new token (kept only hashed). */
    async register(input: Registration): Promise<{ nodeId: string; nodeToken: string; created: boolean }> {
      if (isIP(input.ip) === 0)
        throw new ValidationError('body.ip', 'body.ip must be an IPv4 or IPv6 address.');
      if (!new RegExp(NODE_NAME_PATTERN).test(input.name))
        throw new ValidationError('body.name', 'body.name must be a host name.');
      const capabilities = { ...input.capabilities, gpus: input.capabilities.gpus ?? [] };
      if (!checkCapabilities.Check(capabilities))
        throw new ValidationError('body.capabilities', 'body.capabilities is not a capability report.');
      const nodeToken = randomBytes(32).toString('base64url');
      const at = now();
      await prune(at);
      const [outcome, id] = (await redis.eval(
        REGISTER,
        2,
        names,
        index,
        nodePrefix,
        input.name,
        randomUUID(),
        hashToken(nodeToken).toString('hex'),
        input.ip,
        JSON.stringify(capabilities),
        at,
        at - offlineAfterMs,
        maxNodes,
      )) as [string, string];
      if (outcome === 'conflict')
        throw new ConflictError(
          `The name ${input.name} belongs to a node that is online at another address; give each node its own name (NODE_NAME), or wait until the other is offline.`,
          'body.name',
        );
      if (outcome === 'full')
        throw new DockhandError(
          'node_limit',
          409,
          `The control plane already holds ${maxNodes} nodes; delete those that are gone (DELETE /api/v1/nodes/:id).`,
        );
      if (!UUID.test(id))
        throw new DockhandError(
          'node_record_invalid',
          500,
          'The stored names of nodes are not ones Dockhand wrote.',
        );
      return { nodeId: id, nodeToken, created: outcome === 'created' };
    },

    /**
     * Is `token` this node's current token? `unknown` when there is no such node (deleted,
     * forgotten, never registered): its agent should register again. Compared in constant time.
     */
    async verifyToken(id: string, token: string): Promise<'valid' | 'wrong' | 'unknown'> {
      if (!UUID.test(id)) return 'unknown';
      const stored = await redis.hget(nodeKey(id), 'token');
      // A digest Dockhand did not write: the agent's re-registration replaces it.
      if (stored === null || !TOKEN_HASH.test(stored)) return 'unknown';
      return timingSafeEqual(hashToken(token), Buffer.from(stored, 'hex')) ? 'valid' : 'wrong';
    },

    /** Records a heartbeat; answers the desired state, or undefined when the node is unknown. */
    async heartbeat(id: string, report: Static<typeof Heartbeat>): Promise<Desired | undefined> {
      if (!UUID.test(id)) return undefined;
      const metrics = pickMetrics(report);
      if (!checkMetrics.Check(metrics))
        throw new ValidationError('body', 'The heartbeat is not a metrics report.');
      const reply = await redis.eval(
        HEARTBEAT,
        2,
        nodeKey(id),
        index,
        id,
        now(),
        JSON.stringify(metrics),
        report.state ?? '',
      );
      return desiredFrom(reply);
    },

    /** Undefined when there is no such node; throws when its record is not one Dockhand wrote. */
    async get(id: string): Promise<NodeRecord | undefined> {
      if (!UUID.test(id)) return undefined;
      const hash = await redis.hgetall(nodeKey(id));
      if (Object.keys(hash).length === 0) return undefined;
      const node = parseNode(id, hash);
      if (!node)
        throw new DockhandError(
          'node_record_invalid',
          500,
          `The stored record of node ${id} is not one Dockhand wrote; delete it and let its agent register again.`,
        );
      return node;
    },

    /** Every node, by name; records that fail their check are left out (one bad record hides no other). */
    async list(): Promise<NodeRecord[]> {
      await prune(now());
      const ids = (await redis.zrange(index, '0', String(maxNodes - 1))).filter((id) => UUID.test(id));
      if (ids.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.hgetall(nodeKey(id));
      const replies = (await pipeline.exec()) ?? [];
      const nodes: NodeRecord[] = [];
      replies.forEach(([error, hash], i) => {
        if (error || !hash || typeof hash !== 'object') return;
        const node = parseNode(ids[i] as string, hash as Record<string, string>);
        if (node) nodes.push(node);
      });
      return nodes.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    },

    /** Forgets a node; its token stops working at once. False when there was none. */
    async remove(id: string): Promise<boolean> {
      if (!UUID.test(id)) return false;
      return (await redis.eval(REMOVE, 3, nodeKey(id), names, index, id)) === 1;
    },

    /**
     * Drain: finish what runs, take nothing new. Eligible false: take nothing new. Eligible
     * true: back to work, which ends a drain too. Undefined when the node is unknown.
     */
    async setDesired(
      id: string,
      change: { drain: true } | { eligible: boolean },
    ): Promise<Desired | undefined> {
      if (!UUID.test(id)) return undefined;
      const fields =
        'drain' in change
          ? ['drain', '1', 'eligible', '0']
          : change.eligible
            ? ['eligible', '1', 'drain', '0']
            : ['eligible', '0'];
      return desiredFrom(await redis.eval(SET_DESIRED, 1, nodeKey(id), ...fields));
    },
  };
}
export type NodeStore = ReturnType<typeof createNodeStore>;
