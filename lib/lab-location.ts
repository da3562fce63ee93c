/**
 * Where the lab keeps its state. Shared by the lab (which writes it) and ops `--target lab` (which reads
 * `state.json`), so it lives outside both (ops never import the lab). Not below /tmp, /run or /opt: each lab
 * host replaces those with private copies. Short, because unix socket paths below it are limited to 107 bytes.
 */
import { resolve } from 'node:path';

export const DEFAULT_LAB_DIR = '/var/lib/ec2-swarm-lab';

export function defaultLabDir(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  return env.EC2_SWARM_LAB_DIR ? resolve(cwd, env.EC2_SWARM_LAB_DIR) : DEFAULT_LAB_DIR;
}
