import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Redis } from 'ioredis';
import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { DockhandError } from '../../core/errors.ts';
import { type FunctionChanged, functionChangedChannel } from '../../queues/channels.ts';
import { FUNCTION_NAME_PATTERN } from '../../queues/schemas/functions.ts';
import { RUNTIME_NAMES, type RuntimeName } from '../../runtimes/catalog.ts';
import { writeFileAtomic } from '../batches/folder.ts';
import type { CodeBundle } from './code-archive.ts';

export interface FunctionConfig {
  runtime: RuntimeName;
  handler: string;
  memoryMb: number;
  timeoutMs: number;
  env: Record<string, string>;
  /** `none`: no network at all (default). `egress`: runtimes/egress-network.ts, for functions that call out. */
  network: 'none' | 'egress';
  /** Invocations of this function running at once; more wait. */
  concurrency: number;
  /** Set when the function was deployed through the Lambda API (api/lambda/): what Lambda answers with. */
  lambda?: LambdaMeta;
}

/**
 * What Lambda's API gave and gives back that Dockhand itself has no use for: the runtime string
 * as the user wrote it (`python3.12`, `provided.al2023`), Role, Description, and the deployed
 * zip's own SHA-256 (base64) and size. A deploy through Dockhand's own route drops it.
 */
export interface LambdaMeta {
  runtime: string;
  /** The Handler as given, when Dockhand runs another (a `provided` function's `bootstrap`). */
  handler?: string;
  role?: string;
  description?: string;
  codeSha256?: string;
  codeSize?: number;
}

export interface FunctionRecord extends FunctionConfig {
  name: string;
  /**
   * New on every deploy, even of the same code and config (a hash of both and the deploy's
   * nonce): a container that served an earlier deploy, with what it left in /tmp, is never reused.
   */
  version: string;
  codeSha256: string;
  codeSize: number;
  codeLocation: string;
  lastModified: string;
}

/** Where deployed code lives: DATA_DIR on disk, or an S3 bucket (S3_CODE_BUCKET). */
export interface CodeStorage {
  put(name: string, version: string, bundle: CodeBundle): Promise<string>;
  get(name: string, version: string): Promise<CodeBundle>;
  remove(name: string): Promise<void>;
}

export function localCodeStorage(dir: string): CodeStorage {
  const file = (name: string, version: string) => path.join(dir, name, `${version}.json`);
  return {
    async put(name, version, bundle) {
      await writeFileAtomic(file(name, version), JSON.stringify(bundle));
      return `file://${file(name, version)}`;
    },
    async get(name, version) {
      return JSON.parse(await fs.readFile(file(name, version), 'utf8'));
    },
    async remove(name) {
      await fs.rm(path.join(dir, name), { recursive: true, force: true });
    },
  };
}

export function s3CodeStorage(s3: S3Client, bucket: string): CodeStorage {
  const key = (name: string, version: string) => `functions/${name}/${version}.json`;
  return {
    async put(name, version, bundle) {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key(name, version),
          Body: JSON.stringify(bundle),
          ContentType: 'application/json',
        }),
      );
      return `s3://${bucket}/${key(name, version)}`;
    },
    async get(name, version) {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key(name, version) }));
      return JSON.parse((await res.Body?.transformToString('utf8')) ?? '{}');
    },
    async remove(name) {
      const listed = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: `functions/${name}/` }),
      );
      const objects = (listed.Contents ?? []).map((o) => ({ Key: o.Key as string }));
      if (objects.length)
        await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects } }));
    },
  };
}

/**
 * A stored record, checked before anything uses it: Redis is not a trust boundary, and a record's
 * name and version become a code path and its memory a container limit.
 */
const StoredRecord = Type.Object({
  name: Type.String({ pattern: FUNCTION_NAME_PATTERN }),
  version: Type.String({ pattern: '^[0-9a-f]{16}$' }),
  runtime: Type.Union(RUNTIME_NAMES.map((r) => Type.Literal(r))),
  handler: Type.String({ pattern: '^[A-Za-z0-9_./-]+\\.[A-Za-z_$][A-Za-z0-9_$]*$' }),
  memoryMb: Type.Integer({ minimum: 64, maximum: 10240 }),
  timeoutMs: Type.Integer({ minimum: 1, maximum: 900000 }),
  env: Type.Record(Type.String(), Type.String()),
  network: Type.Union([Type.Literal('none'), Type.Literal('egress')]),
  concurrency: Type.Integer({ minimum: 1, maximum: 1000 }),
  codeSha256: Type.String(),
  codeSize: Type.Integer({ minimum: 0 }),
  codeLocation: Type.String(),
  lastModified: Type.String(),
  lambda: Type.Optional(
    Type.Object({
      runtime: Type.String({ maxLength: 64 }),
      handler: Type.Optional(Type.String({ maxLength: 128 })),
      role: Type.Optional(Type.String({ maxLength: 2048 })),
      description: Type.Optional(Type.String({ maxLength: 256 })),
      codeSha256: Type.Optional(Type.String({ maxLength: 64 })),
      codeSize: Type.Optional(Type.Integer({ minimum: 0 })),
    }),
  ),
});
const checkRecord = Compile(StoredRecord);

function parseRecord(name: string, raw: string): FunctionRecord {
  let record: unknown;
  try {
    record = JSON.parse(raw);
  } catch {
    record = undefined;
  }
  if (!checkRecord.Check(record) || (record as { name: string }).name !== name)
    throw new DockhandError(
      'function_record_invalid',
      500,
      `The stored record of function ${name} is not one Dockhand wrote; redeploy it.`,
    );
  return record as unknown as FunctionRecord;
}

/**
 * Function records in one Redis hash (shared by every gateway and worker), code in CodeStorage.
 * Deploys and deletes are announced on functionChangedChannel for the workers' pools.
 */
export function createFunctionStore(deps: { redis: Redis; prefix: string; code: CodeStorage }) {
  const hash = `${deps.prefix}:functions`;
  const bundles = new Map<string, Promise<CodeBundle>>();
  const records = new Map<string, FunctionRecord>();
  const fresh = new Map<string, { at: number; record: FunctionRecord | undefined }>();
  // Every worker, in whatever process, drops the containers of what was replaced or deleted.
  const changed = async (message: FunctionChanged) => {
    await deps.redis.publish(functionChangedChannel(deps.prefix), JSON.stringify(message));
  };

  /** Drops what this process keeps of a function (records of every version, code, the fresh read). */
  const forget = (name: string) => {
    fresh.delete(name);
    for (const key of records.keys()) if (key.startsWith(`${name}@`)) records.delete(key);
    for (const key of bundles.keys()) if (key.startsWith(`${name}@`)) bundles.delete(key);
  };

  return {
    forget,
    async put(
      name: string,
      config: FunctionConfig,
      bundle: CodeBundle,
    ): Promise<{ record: FunctionRecord; created: boolean }> {
      const codeJson = JSON.stringify(Object.entries(bundle).sort(([a], [b]) => a.localeCompare(b)));
      const codeSha256 = createHash('sha256').update(codeJson).digest('hex');
      const version = createHash('sha256')
        .update(codeSha256)
        .update(JSON.stringify(config))
        .update(randomUUID())
        .digest('hex')
        .slice(0, 16);
      const codeLocation = await deps.code.put(name, version, bundle);
      const record: FunctionRecord = {
        name,
        ...config,
        version,
        codeSha256,
        codeSize: Object.values(bundle).reduce((n, b64) => n + Buffer.byteLength(b64, 'base64'), 0),
        codeLocation,
        lastModified: new Date().toISOString(),
      };
      const created = (await deps.redis.hset(hash, name, JSON.stringify(record))) === 1;
      fresh.delete(name);
      await changed({ name, version });
      return { record, created };
    },

    async get(name: string): Promise<FunctionRecord | undefined> {
      const raw = await deps.redis.hget(hash, name);
      return raw ? parseRecord(name, raw) : undefined;
    },

    /**
     * The current record, as read at most `maxAgeMs` ago by this process: what the invoke
     * route uses, so a hot function costs no Redis read per call. A deploy or delete made
     * through this process is seen at once; one made elsewhere within `maxAgeMs`.
     */
    async getFresh(name: string, maxAgeMs = 1000): Promise<FunctionRecord | undefined> {
      const hit = fresh.get(name);
      if (hit && Date.now() - hit.at < maxAgeMs) return hit.record;
      const record = await this.get(name);
      fresh.set(name, { at: Date.now(), record });
      if (fresh.size > 1000) fresh.delete(fresh.keys().next().value as string);
      return record;
    },

    /**
     * The record of a known version, from memory when this process has seen it: a version is
     * immutable (one deploy's), so only an unknown one costs a Redis read.
     * Returns the current record when that version has since been replaced.
     */
    async getVersion(name: string, version: string | undefined): Promise<FunctionRecord | undefined> {
      const key = `${name}@${version}`;
      const known = version ? records.get(key) : undefined;
      if (known) return known;
      const current = await this.get(name);
      if (current) {
        records.set(`${name}@${current.version}`, current);
        if (records.size > 1000) records.delete(records.keys().next().value as string);
      }
      return current;
    },

    async list(): Promise<FunctionRecord[]> {
      const all = await deps.redis.hgetall(hash);
      return Object.entries(all)
        .map(([name, raw]) => parseRecord(name, raw))
        .sort((a, b) => a.name.localeCompare(b.name));
    },

    async remove(name: string): Promise<boolean> {
      const removed = (await deps.redis.hdel(hash, name)) === 1;
      forget(name);
      if (removed) {
        await changed({ name });
        await deps.code.remove(name);
      }
      return removed;
    },

    /** The code of one version, read once per process and version. */
    bundle(record: FunctionRecord): Promise<CodeBundle> {
      const key = `${record.name}@${record.version}`;
      let pending = bundles.get(key);
      if (!pending) {
        pending = deps.code.get(record.name, record.version);
        pending.catch(() => bundles.delete(key));
        bundles.set(key, pending);
        if (bundles.size > 200) bundles.delete(bundles.keys().next().value as string);
      }
      return pending;
    },
  };
}
export type FunctionStore = ReturnType<typeof createFunctionStore>;
