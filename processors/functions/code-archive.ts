import yauzl from 'yauzl';
import { coerceError, ValidationError } from '../../core/errors.ts';

/** Limits on deployed code; each breach is a 400 with its reason, and nothing is written. */
export const CODE_LIMITS = {
  /** Files in one function. */
  maxEntries: 2000,
  /** Bytes of code uncompressed: it travels to the container and sits in its 64 MiB /tmp. */
  maxTotalBytes: 32 * 1024 * 1024,
  /** Uncompressed ÷ compressed above this is a zip bomb, not code. */
  maxRatio: 100,
};

/** path → base64 content: what the bootstrap receives and writes under /tmp/task. */
export type CodeBundle = Record<string, string>;

/** C0 and C1 controls, DEL and the Unicode line separators: never part of a file name. */
const CONTROL = /[\p{Cc}\u2028\u2029]/u;

/**
 * Refuses what could land outside the task directory or confuse what reads the name later:
 * `..` segments, absolute paths, backslashes, control characters (NUL, newline: a regex's `.`
 * stops at a newline, so `a\n/../../x` once hid its `..` from the pattern this replaced).
 * Checked segment by segment, without a pattern over the whole name.
 */
export function checkPath(name: string, field: string): string {
  const clean = name.replace(/^\.\//, '');
  const refuse = (why: string) =>
    new ValidationError(
      field,
      `${field}: ${JSON.stringify(name)} is not a safe relative file path (${why}).`,
    );
  if (CONTROL.test(clean)) throw refuse('control characters are refused');
  if (clean === '' || clean.length > 512) throw refuse('1 to 512 characters');
  if (clean.startsWith('/') || clean.endsWith('/')) throw refuse('a relative path to a file');
  if (clean.includes('\\')) throw refuse('backslashes are refused');
  if (clean.split('/').includes('..')) throw refuse('`..` is refused');
  return clean;
}

/** A field name that carries no control character from a hostile path into logs and replies. */
const fileField = (name: string) => (CONTROL.test(name) ? 'body.code.files' : `body.code.files.${name}`);

export function bundleFromFiles(files: Record<string, string>): CodeBundle {
  const entries = Object.entries(files);
  if (entries.length === 0) throw new ValidationError('body.code.files', 'body.code.files has no files.');
  if (entries.length > CODE_LIMITS.maxEntries) {
    throw new ValidationError(
      'body.code.files',
      `body.code.files has more than ${CODE_LIMITS.maxEntries} files.`,
    );
  }
  let total = 0;
  const bundle: CodeBundle = {};
  for (const [name, content] of entries) {
    const clean = checkPath(name, fileField(name));
    const bytes = Buffer.from(content, 'utf8');
    total += bytes.length;
    if (total > CODE_LIMITS.maxTotalBytes) {
      throw new ValidationError(
        'body.code.files',
        `body.code.files is larger than ${CODE_LIMITS.maxTotalBytes} bytes.`,
      );
    }
    bundle[clean] = bytes.toString('base64');
  }
  return bundle;
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/**
 * Unpacks a zip in memory, entry by entry, enforcing the limits on what is actually inflated
 * (not on what the headers claim): yauzl checks every entry's real size against its header,
 * and we stop as soon as the running total or the ratio is exceeded.
 */
export async function bundleFromZip(zip: Buffer, field = 'body.code.zipBase64'): Promise<CodeBundle> {
  const bad = (message: string) => new ValidationError(field, `${field}: ${message}`);
  let archive: yauzl.ZipFile;
  try {
    archive = await new Promise<yauzl.ZipFile>((resolve, reject) =>
      yauzl.fromBuffer(
        zip,
        { lazyEntries: true, validateEntrySizes: true, strictFileNames: true },
        (err, z) => (err || !z ? reject(err) : resolve(z)),
      ),
    );
  } catch (err) {
    throw bad(`not a readable zip archive (${coerceError(err).message}).`);
  }
  const bundle: CodeBundle = {};
  let total = 0;
  let count = 0;
  return new Promise<CodeBundle>((resolve, reject) => {
    const fail = (err: Error) => {
      archive.close();
      reject(err instanceof ValidationError ? err : bad(err.message));
    };
    archive.on('error', fail);
    archive.on('end', () => {
      if (count === 0) return reject(bad('the archive has no files.'));
      resolve(bundle);
    });
    archive.on('entry', (entry: yauzl.Entry) => {
      try {
        if (entry.fileName.endsWith('/')) return archive.readEntry();
        const name = checkPath(entry.fileName, field);
        const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
        if (mode === S_IFLNK) throw bad(`${name} is a symbolic link; links are refused.`);
        if (++count > CODE_LIMITS.maxEntries) throw bad(`more than ${CODE_LIMITS.maxEntries} files.`);
        if (total + entry.uncompressedSize > CODE_LIMITS.maxTotalBytes) {
          throw bad(`more than ${CODE_LIMITS.maxTotalBytes} bytes uncompressed.`);
        }
        if (
          entry.compressedSize > 0 &&
          entry.uncompressedSize / entry.compressedSize > CODE_LIMITS.maxRatio
        ) {
          throw bad(`${entry.fileName} expands more than ${CODE_LIMITS.maxRatio}×; refused as a zip bomb.`);
        }
        archive.openReadStream(entry, (err, stream) => {
          if (err || !stream) return fail(err ?? new Error('unreadable entry'));
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => {
            total += chunk.length;
            if (total > CODE_LIMITS.maxTotalBytes) {
              stream.destroy();
              return fail(bad(`more than ${CODE_LIMITS.maxTotalBytes} bytes uncompressed.`));
            }
            chunks.push(chunk);
          });
          stream.on('error', fail);
          stream.on('end', () => {
            bundle[name] = Buffer.concat(chunks).toString('base64');
            archive.readEntry();
          });
        });
      } catch (err) {
        fail(coerceError(err));
      }
    });
    archive.readEntry();
  });
}
