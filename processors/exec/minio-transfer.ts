import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { link, open, readdir, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'minio';
import type { Config } from '../../core/config.ts';
import {
  ConfigError,
  DependencyUnavailableError,
  DockhandError,
  errorCode,
  NotFoundError,
  TooLargeError,
  ValidationError,
} from '../../core/errors.ts';
import {
  assertRealDirectory,
  CONTAINER_WORKSPACE,
  CREATE_FLAGS,
  FILE_MODE,
  openRegularFile,
  quote,
} from './workspace-paths.ts';

/** A MinIO client and the one bucket exec requests read from and upload to (MINIO_BUCKET). */
export interface MinioStore {
  client: Client;
  bucket: string;
}

/**
 * The client for MINIO_ENDPOINT, or undefined when it is not set (requests that name MinIO
 * objects are then refused by name). Nothing is contacted here. The endpoint may be `host:port`
 * (the Exec Agent's `.env`, plain HTTP) or an `http(s)://host:port` URL. Path-style requests,
 * since a self-hosted MinIO has no per-bucket DNS names; the region is fixed so the client does
 * not ask the server for the bucket's location before every first request.
 */
export function createMinioClient(minio: Config['minio']): MinioStore | undefined {
  if (!minio.endpoint) return undefined;
  if (!minio.bucket)
    throw new ConfigError('MINIO_BUCKET', 'MINIO_BUCKET must be set when MINIO_ENDPOINT is.');
  const url = parseEndpoint(minio.endpoint);
  const useSSL = url.protocol === 'https:';
  const client = new Client({
    endPoint: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : useSSL ? 443 : 80,
    useSSL,
    accessKey: minio.accessKey ?? '',
    secretKey: minio.secretKey ?? '',
    pathStyle: true,
    region: 'us-east-1',
  });
  return { client, bucket: minio.bucket };
}

function parseEndpoint(endpoint: string): URL {
  const bad = () =>
    new ConfigError('MINIO_ENDPOINT', 'MINIO_ENDPOINT must be host:port or an http(s)://host:port URL.');
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `http://${endpoint}`);
  } catch {
    throw bad();
  }
  const bare = url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname || !bare) throw bad();
  return url;
}

const isMissing = (err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchBucket';
};

/**
 * Streams one object to `destPath`, counting bytes as they arrive and aborting past `maxBytes`
 * whatever Content-Length said. It is written to a fresh temp name beside `destPath`, then
 * hard-linked into place (link, unlike rename, never replaces an existing file) and the temp
 * name removed: a failed download leaves nothing behind. The caller made `destPath`'s directory
 * without symlinks. Returns the bytes written.
 */
export async function downloadObject(
  client: Client,
  bucket: string,
  objectName: string,
  destPath: string,
  maxBytes: number,
): Promise<number> {
  const shown = quote(objectName);
  const tooLarge = () =>
    new TooLargeError('object_name', `MinIO object ${shown} is larger than ${maxBytes} bytes.`);
  let source: IncomingMessage;
  try {
    source = (await client.getObject(bucket, objectName)) as IncomingMessage;
  } catch (err) {
    if (isMissing(err))
      throw new NotFoundError(`MinIO object ${shown} does not exist in bucket ${quote(bucket)}.`);
    throw new DependencyUnavailableError(
      `MinIO object ${shown} could not be fetched: ${messageOf(err)}.`,
      err,
    );
  }
  const temp = path.join(path.dirname(destPath), `.dockhand-${randomBytes(8).toString('hex')}.part`);
  let created = false;
  try {
    if (Number(source.headers?.['content-length'] ?? 0) > maxBytes) throw tooLarge();
    let total = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        total += chunk.length;
        done(total > maxBytes ? tooLarge() : null, chunk);
      },
    });
    const handle = await open(temp, CREATE_FLAGS, FILE_MODE);
    created = true;
    // The umask may have taken bits off the mode open was given.
    await handle.chmod(FILE_MODE).catch(async (err) => {
      await handle.close();
      throw err;
    });
    // The write stream closes the handle, whether the pipeline ends or fails.
    const sink = handle.createWriteStream();
    // pipeline passes one stream's error on to the others: the first to fail says whose it was,
    // MinIO's (the connection) or ours (the disk), which are different errors for the caller.
    let first: 'minio' | 'disk' | undefined;
    source.once('error', () => {
      first ??= 'minio';
    });
    sink.once('error', () => {
      first ??= 'disk';
    });
    try {
      await pipeline(source, count, sink);
    } catch (err) {
      if (err instanceof DockhandError || first === 'disk') throw err;
      throw new DependencyUnavailableError(
        `MinIO object ${shown} could not be downloaded: ${messageOf(err)}.`,
        err,
      );
    }
    await link(temp, destPath);
    return total;
  } finally {
    source.destroy();
    if (created) await rm(temp, { force: true });
  }
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err)).replace(/\.$/, '');

/** An execution id as it may appear in an object name: Redis is not a trust boundary. */
const EXECUTION_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** S3's limit on a key. */
const MAX_OBJECT_NAME_BYTES = 1024;

/** Default cap on the entries (files, directories, links…) under output/; past it nothing is uploaded. */
export const MAX_UPLOAD_FILES = 10_000;

export interface UploadOptions {
  /** Entries of any kind the tree may hold. Default MAX_UPLOAD_FILES. */
  maxFiles?: number;
  /** Told about each entry left out (symlink, FIFO, device, unreadable), for the log. */
  onSkip?: (relativePath: string, reason: string) => void;
}

/**
 * Uploads every regular file under `workspace/output/` (recursively) to
 * `executions/<executionId>/output/<relative path>`. The container wrote that tree, so symlinks
 * (to files or directories) are skipped and never followed, FIFOs and devices are skipped without
 * being opened, and each file is opened as openRegularFile opens it. The tree is listed before
 * anything is uploaded, so a tree of more than `maxFiles` entries uploads nothing.
 */
export async function uploadOutputDir(
  client: Client,
  bucket: string,
  executionId: string,
  workspace: string,
  options: UploadOptions = {},
): Promise<{ object_name: string; size: number }[]> {
  if (!EXECUTION_ID.test(executionId) || executionId === '.' || executionId === '..')
    throw new ValidationError('execution_id', 'The execution id is not safe to use in an object name.');
  const maxFiles = options.maxFiles ?? MAX_UPLOAD_FILES;
  const root = path.join(workspace, 'output');
  await assertRealDirectory(workspace, 'output');
  const files = await listRegularFiles(root, maxFiles, options.onSkip);
  const uploaded: { object_name: string; size: number }[] = [];
  for (const rel of files) {
    const objectName = `executions/${executionId}/output/${rel}`;
    if (Buffer.byteLength(objectName) > MAX_OBJECT_NAME_BYTES) {
      options.onSkip?.(rel, `its object name would be longer than ${MAX_OBJECT_NAME_BYTES} bytes`);
      continue;
    }
    const opened = await openRegularFile(root, rel).catch((err) => ({
      reason: `could not be opened (${errorCode(err) ?? 'error'})`,
    }));
    if ('reason' in opened) {
      options.onSkip?.(rel, opened.reason);
      continue;
    }
    const body =
      opened.size === 0
        ? Buffer.alloc(0)
        : opened.handle.createReadStream({ start: 0, end: opened.size - 1, autoClose: false });
    try {
      await client.putObject(bucket, objectName, body, opened.size);
    } catch (err) {
      throw new DependencyUnavailableError(
        `Uploading ${quote(objectName)} to MinIO failed: ${messageOf(err)}.`,
        err,
      );
    } finally {
      // A stream left reading after a failed upload must not outlive its descriptor.
      if (!Buffer.isBuffer(body)) body.destroy();
      await opened.handle.close();
    }
    uploaded.push({ object_name: objectName, size: opened.size });
  }
  return uploaded;
}

/**
 * Relative paths of the regular files under `root`, from readdir's entry types (which come from
 * the directory itself, so a symlink is seen as a symlink and never entered). A directory swapped
 * for a symlink between the listing and the descent could only add names: each file is then
 * opened by openRegularFile, which refuses any path with a symlink on it.
 */
async function listRegularFiles(
  root: string,
  maxFiles: number,
  onSkip: UploadOptions['onSkip'],
): Promise<string[]> {
  const found: string[] = [];
  let seen = 0;
  const walk = async (rel: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(rel ? path.join(root, rel) : root, { withFileTypes: true });
    } catch (err) {
      // The container can make a directory we cannot list (ENAMETOOLONG, EACCES when not root).
      if (!rel) throw err;
      onSkip?.(rel, `could not be listed (${errorCode(err) ?? 'error'})`);
      return;
    }
    // Every entry counts, not only files: a million directories, symlinks or FIFOs cost a walk
    // and (all but directories) a log line each, and a container makes them in seconds.
    seen += entries.length;
    if (seen > maxFiles)
      throw new TooLargeError(
        'output.minio_upload',
        `${CONTAINER_WORKSPACE}/output holds more than ${maxFiles} entries; nothing was uploaded.`,
      );
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) found.push(child);
      else onSkip?.(child, entry.isSymbolicLink() ? 'a symlink' : 'not a regular file');
    }
  };
  await walk('');
  return found;
}
