/**
 * The staging channel (design.md decision 12): the bundle goes to the cluster's staging bucket, the SSM command
 * carries only its bucket, key and SHA-256, and the operator deletes the object once the deploy ran (the bucket's
 * lifecycle expires anything left). Values never reach SSM's command history.
 */
import { randomUUID } from 'node:crypto';
import { SwarmError } from '../../errors';

export interface StagingChannel {
  readonly bucket: string;
  readonly region: string;
  put(key: string, body: Buffer): Promise<void>;
  delete(key: string): Promise<void>;
}

export interface StagedObject {
  readonly bucket: string;
  readonly region: string;
  readonly key: string;
  readonly sha256: string;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function stagingKey(stack: string): string {
  return `bundles/${stack}/${randomUUID()}.tgz`;
}

export interface S3StagingOptions {
  readonly bucket: string;
  readonly region: string;
  /** The lab's S3 stand-in; absent → the regional endpoint. */
  readonly endpoint?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

/** The S3 implementation (SDK loaded on first use, so commands that deploy nothing never load it). */
export function s3StagingChannel(opts: S3StagingOptions): StagingChannel & { close(): void } {
  if (!BUCKET.test(opts.bucket)) throw SwarmError.user('OUTPUTS_INVALID', `staging bucket "${opts.bucket}" is not an S3 bucket name`);
  let client: import('@aws-sdk/client-s3').S3Client | undefined;
  const s3 = () => require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
  const get = () =>
    (client ??= new (s3().S3Client)({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      maxAttempts: 5,
    }));
  const wrap = async (what: string, f: () => Promise<unknown>) => {
    try {
      await f();
    } catch (e) {
      // The SDK's message names the bucket and the error code, never the body.
      throw SwarmError.environment('STAGING_FAILED', `staging bucket ${opts.bucket}: ${what} failed: ${(e as Error).name}: ${(e as Error).message}`, e);
    }
  };
  return {
    bucket: opts.bucket,
    region: opts.region,
    put: (key, body) => wrap(`upload of ${key}`, () => get().send(new (s3().PutObjectCommand)({ Bucket: opts.bucket, Key: key, Body: body, ServerSideEncryption: 'AES256' }))),
    delete: (key) => wrap(`delete of ${key}`, () => get().send(new (s3().DeleteObjectCommand)({ Bucket: opts.bucket, Key: key }))),
    close: () => client?.destroy(),
  };
}
