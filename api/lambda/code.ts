import { createHash } from 'node:crypto';
import { bundleFromZip, type CodeBundle } from '../../processors/functions/code-archive.ts';
import type { S3CodeReader } from '../../processors/functions/s3-code-source.ts';
import { invalidParameter, LambdaError } from './errors.ts';

/** Lambda's limit on a zip uploaded in the request (ZipFile), decoded. */
export const MAX_ZIP_BYTES = 50 * 1024 * 1024;

/**
 * Lambda's limit on a CreateFunction / UpdateFunctionCode request body: the 50 MB zip in
 * base64 inside JSON. Those two routes take up to this (or BODY_LIMIT_BYTES when larger).
 */
export const CODE_REQUEST_LIMIT = 70_167_211;

export interface LambdaCode {
  ZipFile?: string;
  S3Bucket?: string;
  S3Key?: string;
  ImageUri?: string;
}

export interface ResolvedCode {
  bundle: CodeBundle;
  /** The zip's SHA-256, base64: Lambda's CodeSha256. */
  codeSha256: string;
  codeSize: number;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Reads the zip from ZipFile or an allowed S3 bucket and unpacks it under Dockhand's code limits. */
export async function resolveLambdaCode(code: LambdaCode, readS3: S3CodeReader): Promise<ResolvedCode> {
  if (code.ImageUri !== undefined)
    throw invalidParameter('Dockhand runs Zip packages only: container images (ImageUri) are not supported.');
  let zip: Buffer;
  if (code.ZipFile !== undefined) {
    if (code.S3Bucket !== undefined || code.S3Key !== undefined)
      throw invalidParameter('Please specify either ZipFile or S3Bucket and S3Key, not both.');
    if (!BASE64.test(code.ZipFile) || code.ZipFile.length % 4 !== 0)
      throw invalidParameter('Code.ZipFile is not valid base64.');
    zip = Buffer.from(code.ZipFile, 'base64');
  } else if (code.S3Bucket !== undefined && code.S3Key !== undefined) {
    try {
      zip = await readS3({ bucket: code.S3Bucket, key: code.S3Key });
    } catch (err) {
      // One sentence whatever happened (missing, not allowed, too large: the reader's log says
      // which): the route must not tell apart buckets the caller cannot see.
      throw Object.assign(
        invalidParameter(
          `Error occurred while GetObject: Code.S3Bucket/S3Key could not be read from an allowed bucket (at most ${MAX_ZIP_BYTES} bytes).`,
        ),
        { cause: err },
      );
    }
  } else {
    throw invalidParameter('Please specify Code.ZipFile, or both Code.S3Bucket and Code.S3Key.');
  }
  if (zip.length > MAX_ZIP_BYTES)
    throw new LambdaError(
      'RequestTooLargeException',
      413,
      `Unzipped or zipped code: the zip must be smaller than ${MAX_ZIP_BYTES} bytes.`,
    );
  const bundle = await bundleFromZip(zip, code.ZipFile !== undefined ? 'Code.ZipFile' : 'Code.S3Key');
  return {
    bundle,
    codeSha256: createHash('sha256').update(zip).digest('base64'),
    codeSize: zip.length,
  };
}
