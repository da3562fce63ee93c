/**
 * The lab S3's objects on disk: `<dir>/<bucket>/<sha256(key)>.obj` with a `.json` beside it (key, ETag, type,
 * checksums). File names come from the key's hash, so no key can reach outside the bucket's folder. The folder is
 * 0700 and every file 0600: bundles carry secrets. Writes are atomic (a temporary file renamed).
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface StoredObject {
  readonly key: string;
  readonly size: number;
  /** `"<md5 hex>"`, quoted as S3 sends it. */
  readonly etag: string;
  readonly contentType: string;
  /** ISO 8601. */
  readonly lastModified: string;
  /** `x-amz-checksum-<algorithm>` headers given at upload (S3 returns them when asked with checksum mode). */
  readonly checksums: Readonly<Record<string, string>>;
}

export class ObjectStore {
  constructor(
    private readonly dir: string,
    /** The buckets that exist; anything else is NoSuchBucket. */
    readonly buckets: readonly string[],
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }

  hasBucket(bucket: string): boolean {
    return this.buckets.includes(bucket);
  }

  private paths(bucket: string, key: string): { body: string; meta: string } {
    const id = createHash('sha256').update(key).digest('hex');
    return { body: join(this.dir, bucket, `${id}.obj`), meta: join(this.dir, bucket, `${id}.json`) };
  }

  put(bucket: string, key: string, body: Buffer, o: { contentType?: string; checksums?: Record<string, string> } = {}): StoredObject {
    const bucketDir = join(this.dir, bucket);
    mkdirSync(bucketDir, { recursive: true, mode: 0o700 });
    const p = this.paths(bucket, key);
    const meta: StoredObject = {
      key,
      size: body.length,
      etag: `"${createHash('md5').update(body).digest('hex')}"`,
      contentType: o.contentType ?? 'binary/octet-stream',
      lastModified: new Date().toISOString(),
      checksums: o.checksums ?? {},
    };
    atomicWrite(p.body, body);
    atomicWrite(p.meta, JSON.stringify(meta));
    return meta;
  }

  head(bucket: string, key: string): StoredObject | undefined {
    const p = this.paths(bucket, key);
    if (!existsSync(p.meta) || !existsSync(p.body)) return undefined;
    return JSON.parse(readFileSync(p.meta, 'utf8')) as StoredObject;
  }

  get(bucket: string, key: string): { meta: StoredObject; body: Buffer } | undefined {
    const meta = this.head(bucket, key);
    return meta ? { meta, body: readFileSync(this.paths(bucket, key).body) } : undefined;
  }

  /** Deleting a missing key succeeds, as on S3. */
  delete(bucket: string, key: string): void {
    const p = this.paths(bucket, key);
    rmSync(p.body, { force: true });
    rmSync(p.meta, { force: true });
  }

  /** Every key in a bucket (for tests: what is left behind). */
  keys(bucket: string): string[] {
    const bucketDir = join(this.dir, bucket);
    if (!existsSync(bucketDir)) return [];
    return readdirSync(bucketDir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => (JSON.parse(readFileSync(join(bucketDir, f), 'utf8')) as StoredObject).key)
      .sort();
  }
}

function atomicWrite(file: string, content: Buffer | string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  renameSync(tmp, file);
}
