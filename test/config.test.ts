import { cidrsOverlap, ipv4Range } from '../lib/cluster/address-pool';
import { autoScalingGroupNames, configFromContext, failuresTolerated, isCidr, parameterNames, parseClusterConfig } from '../lib/config';
import { SwarmError } from '../lib/errors';

function errorOf(fn: () => unknown): SwarmError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SwarmError) return e;
    throw e;
  }
  throw new Error('expected a SwarmError, got none');
}

describe('cluster config defaults', () => {
  test('GIVEN no input THEN the classic first swarm: 1 manager, 3 t3.small workers, new VPC in 2 AZs', () => {
    const cfg = configFromContext({});
    expect(cfg).toEqual({
      name: 'swarm',
      managers: 1,
      workers: 3,
      managerInstanceType: 't3.small',
      workerInstanceType: 't3.small',
      rootVolumeGiB: 20,
      maxAzs: 2,
      publishedPorts: [],
      loadBalancer: false,
      encryptedOverlay: false,
      overlayAddressPool: '172.20.0.0/16',
      overlayAddressPoolMask: 24,
    });
  });
});

describe('managers', () => {
  test.each([1, 3, 5, 7])('%i managers are accepted', (n) => {
    expect(configFromContext({ managers: String(n) }).managers).toBe(n);
  });

  test.each([
    [2, 'managers must be 1, 3, 5 or 7 (got 2): an even count adds no fault tolerance'],
    [4, 'managers must be 1, 3, 5 or 7 (got 4): an even count adds no fault tolerance'],
    [9, 'managers must be 1, 3, 5 or 7 (got 9): more managers slow every Raft write, and 7 already survive 3 failures'],
    [0, 'managers must be 1, 3, 5 or 7 (got 0): a swarm needs at least one manager'],
  ])('%i managers are refused with the reason', (n, message) => {
    const err = errorOf(() => configFromContext({ managers: String(n) }));
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(`✖ ${message}`);
    expect(err.message).toContain('→ at managers');
  });

  test('failures tolerated: 1/3/5/7 managers survive 0/1/2/3 failures', () => {
    expect([1, 3, 5, 7].map(failuresTolerated)).toEqual([0, 1, 2, 3]);
  });
});

describe('overlay address pool', () => {
  test('the default pool lies in 172.16.0.0/12, clear of the default VPC and of docker0/docker_gwbridge', () => {
    const cfg = configFromContext({});
    expect(cidrsOverlap(cfg.overlayAddressPool, '172.16.0.0/12')).toBe(true);
    expect(ipv4Range(cfg.overlayAddressPool)![0]).toBeGreaterThanOrEqual(ipv4Range('172.16.0.0/12')![0]);
    expect(ipv4Range(cfg.overlayAddressPool)![1]).toBeLessThanOrEqual(ipv4Range('172.16.0.0/12')![1]);
    for (const other of ['10.0.0.0/16', '172.17.0.0/16', '172.18.0.0/16']) expect(cidrsOverlap(cfg.overlayAddressPool, other)).toBe(false);
  });

  test('-c values are taken', () => {
    const cfg = configFromContext({ overlayAddressPool: '192.168.128.0/18', overlayAddressPoolMask: '26' });
    expect(cfg).toMatchObject({ overlayAddressPool: '192.168.128.0/18', overlayAddressPoolMask: 26 });
  });
});

describe('sources: defaults < config file < -c context', () => {
  const file = JSON.stringify({ name: 'from-file', workers: 5, managerInstanceType: 'm5.large' });

  test('context strings are coerced and override the file', () => {
    const cfg = configFromContext({ config: 'cluster.json', workers: '7', encryptedOverlay: 'true' }, () => file);
    expect(cfg.name).toBe('from-file');
    expect(cfg.managerInstanceType).toBe('m5.large');
    expect(cfg.workers).toBe(7);
    expect(cfg.encryptedOverlay).toBe(true);
  });

  test('publishedPorts arrive as JSON in context', () => {
    const cfg = configFromContext({ publishedPorts: '[{"port":80,"cidrs":["203.0.113.0/24"]}]' });
    expect(cfg.publishedPorts).toEqual([{ port: 80, protocol: 'tcp', cidrs: ['203.0.113.0/24'] }]);
  });

  test('CDK feature flags and lookup keys in context are not mistaken for config', () => {
    const cfg = configFromContext({
      '@aws-cdk/aws-ec2:restrictDefaultSecurityGroup': true,
      'availability-zones:account=123456789012:region=eu-west-1': ['eu-west-1a'],
      workers: '2',
    });
    expect(cfg.workers).toBe(2);
  });

  test('an unreadable config file is a user error naming the file', () => {
    const err = errorOf(() =>
      configFromContext({ config: 'missing.json' }, () => {
        throw new Error('ENOENT: no such file');
      }),
    );
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain('missing.json');
    expect(err.message).toContain('→ at config');
  });

  test('a config file with a syntax error names the file', () => {
    const err = errorOf(() => configFromContext({ config: 'bad.json' }, () => '{ workers: 3 '));
    expect(err.message).toMatch(/bad\.json is not valid JSON/);
  });

  test('unknown keys in the file are rejected too', () => {
    const err = errorOf(() => configFromContext({ config: 'c.json' }, () => '{"wrkers": 3}'));
    expect(err.message).toContain('wrkers');
  });
});

describe('bad configs: each error names the field and says what is allowed', () => {
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['negative workers', { workers: '-1' }, 'workers', /0 to 1000/],
    ['huge workers', { workers: '1001' }, 'workers', /0 to 1000/],
    ['non-numeric workers', { workers: 'three' }, 'workers', /0 to 1000/],
    ['fractional workers', { workers: '2.5' }, 'workers', /whole number/],
    ['two managers', { managers: '2' }, 'managers', /an even count adds no fault tolerance/],
    ['fractional managers', { managers: '2.5' }, 'managers', /must be 1, 3, 5 or 7 \(got 2\.5\)/],
    ['IPv6 pool', { overlayAddressPool: 'fd00::/64' }, 'overlayAddressPool', /IPv4 CIDR/],
    ['pool not a CIDR', { overlayAddressPool: '172.20.0.0' }, 'overlayAddressPool', /IPv4 CIDR/],
    ['pool mask too long', { overlayAddressPoolMask: '30' }, 'overlayAddressPoolMask', /16 to 28/],
    ['pool smaller than its mask', { overlayAddressPool: '172.20.0.0/25' }, 'overlayAddressPoolMask', /cannot hold a \/24/],
    ['uppercase name', { name: 'Prod' }, 'name', /lowercase/],
    ['name with shell metacharacters', { name: 'a;rm -rf /' }, 'name', /lowercase letters, digits and hyphens/],
    ['name too long', { name: 'a'.repeat(40) }, 'name', /1-32 characters/],
    ['bad instance type', { workerInstanceType: 't3small' }, 'workerInstanceType', /instance type/],
    ['tiny root volume', { rootVolumeGiB: '4' }, 'rootVolumeGiB', /at least 8/],
    ['bad AMI', { ami: 'ami-xyz' }, 'ami', /AMI id/],
    ['bad VPC id', { vpcId: 'my-vpc' }, 'vpcId', /VPC id/],
    ['bad CIDR', { publishedPorts: '[{"port":80,"cidrs":["10.0.0.0/33"]}]' }, 'publishedPorts[0].cidrs[0]', /CIDR/],
    ['CIDR missing', { publishedPorts: '[{"port":80,"cidrs":[]}]' }, 'publishedPorts[0].cidrs', /at least one CIDR/],
    ['swarm port published', { publishedPorts: '[{"port":2377,"cidrs":["0.0.0.0/0"]}]' }, 'publishedPorts[0].port', /never published/],
    ['port out of range', { publishedPorts: '[{"port":70000,"cidrs":["0.0.0.0/0"]}]' }, 'publishedPorts[0].port', /65535/],
    ['bad protocol', { publishedPorts: '[{"port":80,"protocol":"icmp","cidrs":["0.0.0.0/0"]}]' }, 'publishedPorts[0].protocol', /tcp|udp/],
    ['duplicate port', { publishedPorts: '[{"port":80,"cidrs":["0.0.0.0/0"]},{"port":80,"cidrs":["0.0.0.0/0"]}]' }, 'publishedPorts[1]', /twice/],
    ['load balancer without ports', { loadBalancer: 'true' }, 'loadBalancer', /publishedPorts/],
    ['non-boolean flag', { encryptedOverlay: 'yes' }, 'encryptedOverlay', /boolean/],
    ['unknown key (typo)', { wokers: '3' }, 'wokers', /did you mean "workers"/],
    ['port without any CIDR', { publishedPorts: '[{"port":80}]' }, 'publishedPorts[0].cidrs', /at least one CIDR/],
    ['minWorkers above workers', { workers: '2', minWorkers: '3' }, 'minWorkers', /at most workers \(2\)/],
    ['maxWorkers below workers', { workers: '2', maxWorkers: '1' }, 'maxWorkers', /at least workers \(2\)/],
    ['minWorkers above maxWorkers', { workers: '3', minWorkers: '5', maxWorkers: '4' }, 'maxWorkers', /at least minWorkers \(5\)/],
    ['bad worker type in a list', { workerInstanceTypes: '["m5.large","m5large"]' }, 'workerInstanceTypes[1]', /instance type/],
    ['both worker type keys', { workerInstanceType: 'm5.large', workerInstanceTypes: '["c5.large"]' }, 'workerInstanceTypes', /either workerInstanceType or workerInstanceTypes/],
    ['unknown spot key', { workerSpot: '{"base":1}' }, 'workerSpot', /base/],
  ];

  test.each(cases)('%s', (_title, context, field, message) => {
    const err = errorOf(() => configFromContext(context));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.fault).toBe('user');
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(message);
    expect(err.message).toContain(`→ at ${field}`);
    expect(err.message).toContain('✖');
  });

  test('several problems are all reported at once', () => {
    const err = errorOf(() => configFromContext({ workers: '-1', name: 'BAD' }));
    expect(err.message).toContain('→ at workers');
    expect(err.message).toContain('→ at name');
  });
});

describe('helpers', () => {
  test.each([
    ['10.0.0.0/8', true],
    ['0.0.0.0/0', true],
    ['2001:db8::/32', true],
    ['10.0.0.0/33', false],
    ['10.0.0.0', false],
    ['300.0.0.0/8', false],
    ['::/129', false],
  ])('isCidr(%s) = %s', (value, ok) => {
    expect(isCidr(value)).toBe(ok);
  });

  test('runtime parameter names live under /ec2-swarm/<cluster>/', () => {
    expect(parameterNames('prod')).toEqual({
      workerToken: '/ec2-swarm/prod/worker-token',
      managerToken: '/ec2-swarm/prod/manager-token',
      managerAddresses: '/ec2-swarm/prod/manager-addresses',
      initLock: '/ec2-swarm/prod/init-lock',
      clusterId: '/ec2-swarm/prod/cluster-id',
    });
    expect(autoScalingGroupNames('prod')).toEqual({ managers: 'ec2-swarm-prod-managers', workers: 'ec2-swarm-prod-workers' });
  });

  test('worker capacity, types and Spot from -c context (numbers and JSON coerced)', () => {
    const cfg = configFromContext({
      workers: '3',
      minWorkers: '1',
      maxWorkers: '9',
      workerInstanceTypes: '["m6i.large","m5.large"]',
      workerSpot: '{"onDemandBaseCapacity":1}',
    });
    expect(cfg).toMatchObject({
      workers: 3,
      minWorkers: 1,
      maxWorkers: 9,
      workerInstanceTypes: ['m6i.large', 'm5.large'],
      // The launch template's type follows the list's first.
      workerInstanceType: 'm6i.large',
      workerSpot: { onDemandBaseCapacity: 1, onDemandPercentageAboveBaseCapacity: 0, allocationStrategy: 'price-capacity-optimized' },
    });
    // A parsed config parses again unchanged (SwarmStack hands it to SwarmCluster).
    expect(parseClusterConfig(cfg)).toEqual(cfg);
  });

  test('published ports may lack CIDRs only where the caller says other sources exist', () => {
    const input = { publishedPorts: [{ port: 80 }, { port: 81, cidrs: ['10.0.0.0/8'] }] };
    expect(errorOf(() => parseClusterConfig(input)).message).toContain('→ at publishedPorts[0].cidrs');
    expect(parseClusterConfig(input, 'props', { portsWithOtherSources: new Set([0]) }).publishedPorts[0]).toEqual({ port: 80, protocol: 'tcp', cidrs: [] });
  });

  test('parseClusterConfig accepts typed input from a CDK app', () => {
    expect(parseClusterConfig({ name: 'x', workers: 0 }).workers).toBe(0);
  });
});
