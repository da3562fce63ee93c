/**
 * Entry point of the lab gateway process: `tsx lib/lab/cloud/gateway-main.ts <config.json>`, spawned by the lab inside
 * the hub namespace (`nsenter --net=/run/netns/<pfx>-hub …`). Prints one JSON line `{"ready":true,…}` on stdout
 * once both listeners are up (the lab waits for it, bounded), and exits 0 on SIGTERM/SIGINT after closing them.
 * Any startup failure: one line on stderr, exit 1.
 */
import { readFileSync } from 'node:fs';
import { parseGatewayConfig, startGateway } from './gateway';

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: gateway-main <config.json>');
  const cfg = parseGatewayConfig(JSON.parse(readFileSync(file, 'utf8')), file);
  const gw = await startGateway(cfg);
  const stop = (): void => {
    // Bounded: do not hang on a stuck keep-alive connection.
    setTimeout(() => process.exit(0), 3000).unref();
    void gw.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, imdsPort: gw.imdsPort, httpsPort: gw.httpsPort }) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`lab gateway: ${(e as Error).message}\n`);
  process.exit(1);
});
