/**
 * This package's own package.json, found from the running file (lib/ under tsx and jest, dist/lib/ when installed).
 * Loads only node:fs: `ec2-swarm --version` must stay as fast as `--help` (no CDK, no SDK).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SwarmError } from './errors';

const PACKAGE_NAME = 'ec2-swarm';

/** The version field of the ec2-swarm package.json above `from` (the first package.json named ec2-swarm). */
export function packageVersion(from: string = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return pkg.version;
    }
    if (dirname(dir) === dir) throw SwarmError.environment('PACKAGE_JSON_NOT_FOUND', `no package.json of ${PACKAGE_NAME} above ${from}`);
  }
}
