/**
 * The contract's user-data shape (docs/contracts.md): CDK's signal-on-exit trap, then `bash <role>.sh`, whose exit
 * code becomes the CloudFormation signal. The construct's own tests run the real rendered user-data; this checks
 * that the scripts' exit codes give the right signal in that shape.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FakeCloud, FakeNode, swarmEnv } from './stubs/sandbox';

// A shared 2-core machine can make one role-script run take tens of seconds (each stand-in call starts node).
jest.setTimeout(240_000);

function userData(node: FakeNode, script: string): string {
  const file = path.join(node.dir, 'user-data.sh');
  // As rendered by UserData.addSignalOnExitCommand, with the stand-in's path for /opt/aws/bin/cfn-signal.
  fs.writeFileSync(
    file,
    [
      '#!/bin/bash',
      'function exitTrap(){',
      'exitCode=$?',
      `'${node.cfnSignalPath}' --stack Demo --resource Res --region eu-west-1 -e $exitCode || echo 'Failed to send Cloudformation Signal'`,
      '}',
      'trap exitTrap EXIT',
      'set -euo pipefail',
      `bash '${script}'`,
      '',
    ].join('\n'),
  );
  return file;
}

describe('CloudFormation signal from the role scripts', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
  });

  const signals = (node: string) => cloud.calls('cfn-signal', node).map((c) => c.argv[c.argv.indexOf('-e') + 1]);

  test('manager success then worker success → both signal 0', async () => {
    const mgr = await cloud.addNode({ name: 'manager', ip: '10.0.1.20' });
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30' });

    expect((await mgr.run([userData(mgr, mgr.script('manager.sh'))], swarmEnv('demo'))).code).toBe(0);
    expect((await worker.run([userData(worker, worker.script('worker.sh'))], swarmEnv('demo'))).code).toBe(0);

    expect(signals('manager')).toEqual(['0']);
    expect(signals('worker')).toEqual(['0']);
  });

  test('a worker that cannot join signals failure (the deploy rolls back)', async () => {
    const worker = await cloud.addNode({ name: 'worker' });

    const res = await worker.run([userData(worker, worker.script('worker.sh'))], swarmEnv('demo', { SWARM_JOIN_TIMEOUT_S: '1' }));

    expect(res.code).not.toBe(0);
    expect(signals('worker')).toEqual(['1']);
  });

  test('cfn-signal installed by the script itself still sends the failure signal', async () => {
    const mgr = await cloud.addNode({ name: 'manager', cfnSignal: false });
    mgr.metadata['local-ipv4'] = 'not-an-ip';

    const res = await mgr.run([userData(mgr, mgr.script('manager.sh'))], swarmEnv('demo'));

    expect(res.code).not.toBe(0);
    expect(cloud.calls('dnf', 'manager').map((c) => c.argv)).toEqual([['install', '-y', 'aws-cfn-bootstrap']]);
    expect(signals('manager')).toEqual(['1']);
  });
});
