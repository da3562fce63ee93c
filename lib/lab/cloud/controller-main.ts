/**
 * Entry point of the lab controller process: `node [--require tsx/cjs] controller-main <labDir>/controller.json`,
 * started detached by `lab up` (controller.ts) and stopped by `lab down` (SIGTERM, by its recorded PID). Writes
 * `<labDir>/controller.ready.json` once it serves; exits 0 on SIGTERM/SIGINT after closing, 1 on a start-up failure.
 */
import { readFileSync } from 'node:fs';
import { controllerConfigSchema, startController, writeControllerReady } from './controller';

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: controller-main <controller.json>');
  const cfg = controllerConfigSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  const running = await startController(cfg);
  const cloud = running.cloud;
  const stop = (): void => {
    // Bounded: a stuck keep-alive connection must not keep the lab from going down.
    setTimeout(() => process.exit(0), 3000).unref();
    void running.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => undefined); // detached: a closed terminal is not a reason to stop
  writeControllerReady(cfg.labDir, {
    pid: process.pid,
    endpoint: cloud.endpoint!,
    socketPath: cloud.socketPath!,
    ...(running.s3 ? { s3Endpoint: running.s3.endpoint!, s3Socket: running.s3.socketPath! } : {}),
  });
  process.stdout.write(`${new Date().toISOString()} lab controller ${process.pid} serving SSM at ${cloud.endpoint} and ${cloud.socketPath}${running.s3 ? `, S3 at ${running.s3.endpoint} and ${running.s3.socketPath}` : ''}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`lab controller: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
