/**
 * Where the lab keeps its state, and the operator's key to it. Shared by the lab (which writes the state and
 * verifies signatures with the key: lib/lab/credentials.ts) and ops `--target lab` (which reads `state.json` and
 * signs with the key), so it lives outside both (ops never import the lab). Not below /tmp, /run or /opt: each lab
 * host replaces those with private copies. Short, because unix socket paths below it are limited to 107 bytes.
 */
import { resolve } from 'node:path';

export const DEFAULT_LAB_DIR = '/var/lib/ec2-swarm-lab';

/** The lab operator's access key: not a secret (it opens only this machine's lab), but the lab checks it as AWS would. */
export const LAB_OPERATOR_CREDENTIALS = { accessKeyId: 'AKIDLAB0000000000000', secretAccessKey: 'lab-secret-not-a-secret' } as const;

export function defaultLabDir(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  return env.EC2_SWARM_LAB_DIR ? resolve(cwd, env.EC2_SWARM_LAB_DIR) : DEFAULT_LAB_DIR;
}
