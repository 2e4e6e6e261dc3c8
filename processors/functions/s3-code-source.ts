import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DockhandError, ValidationError } from '../../core/errors.ts';

/** Largest zip `code.s3` may name, counted as it streams in. */
export const MAX_S3_CODE_BYTES = 50 * 1024 * 1024;

/**
 * Every failure to read says the same: whether the bucket is not allowed, the object is
 * missing or access is denied must not be told apart, or the route answers questions about
 * buckets the caller cannot see.
 */
export const S3_CODE_UNREADABLE = 'body.code.s3 could not be read from an allowed bucket.';

export type S3CodeReader = (where: { bucket: string; key: string }) => Promise<Buffer>;

const FIELD = 'body.code.s3';

/** The error a refused read answers with; `cause` (for the log only) says what happened. */
function unreadable(cause?: unknown): ValidationError {
  const error = new ValidationError(FIELD, S3_CODE_UNREADABLE);
  if (cause !== undefined) error.cause = cause;
  return error;
}

const tooLarge = (maxBytes: number) =>
  new ValidationError(FIELD, `${FIELD}: the object is larger than ${maxBytes / 1024 / 1024} MiB.`);

/**
 * Reads deploy zips from S3 for `code.s3`, only from the configured buckets (S3_CODE_BUCKET and
 * S3_CODE_BUCKETS_ALLOWED): the server's credentials may reach many more, and a caller must
 * not borrow them. A foreign bucket is refused before any request. The body is counted as it
 * arrives and the download aborted past `maxBytes`, whatever ContentLength said (an object
 * served chunked has none).
 */
export function createS3CodeReader(deps: {
  s3: S3Client | undefined;
  /** Buckets that may be read; empty refuses every `code.s3`. */
  buckets: readonly string[];
  /** Default MAX_S3_CODE_BYTES. */
  maxBytes?: number;
}): S3CodeReader {
  const allowed = new Set(deps.buckets.filter(Boolean));
  const maxBytes = deps.maxBytes ?? MAX_S3_CODE_BYTES;
  return async ({ bucket, key }) => {
    if (!deps.s3)
      throw new ValidationError(
        FIELD,
        'body.code.s3 needs S3_ENDPOINT or AWS credentials configured.',
        's3_not_configured',
      );
    if (!allowed.has(bucket)) throw unreadable(new Error(`bucket ${bucket} is not allowed`));
    const abort = new AbortController();
    try {
      const res = await deps.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), {
        abortSignal: abort.signal,
      });
      if ((res.ContentLength ?? 0) > maxBytes) throw tooLarge(maxBytes);
      const body = res.Body as AsyncIterable<Uint8Array> | undefined;
      if (!body) throw new Error('the object has no body');
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of body) {
        total += chunk.byteLength;
        if (total > maxBytes) throw tooLarge(maxBytes);
        chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      }
      return Buffer.concat(chunks, total);
    } catch (err) {
      // Whatever is still in flight (the rest of an oversized body) is dropped, not drained.
      abort.abort();
      if (err instanceof DockhandError) throw err;
      throw unreadable(err);
    }
  };
}
