/**
 * Child-process entry of the lab registry's pusher (registry.ts runs it inside the hub namespace, where the
 * registry listens): the job as JSON on stdin (credentials included, so never in argv), the manifest digest on stdout.
 */
import { readFileSync } from 'node:fs';
import { pushImage } from './push';

async function main(): Promise<void> {
  const job = JSON.parse(readFileSync(0, 'utf8')) as { registry: string; repository: string; tag: string; imageTar: string; caFile: string; username: string; password: string };
  const digest = await pushImage({ ...job, ca: readFileSync(job.caFile) });
  process.stdout.write(`${digest}\n`);
}

main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
