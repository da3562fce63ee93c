/**
 * A consumer's CDK app: its own aws-cdk-lib (an older minor than ec2-swarm is built with), its own Stack, VPC and
 * CI role, and the SwarmCluster construct from the installed package, used the way CDK code uses aws-cdk-lib's own
 * constructs (objects as props, IConnectable, a grant, scaling policies, user-data hooks). Synthesizing proves the
 * construct and the app share one aws-cdk-lib (a second copy would not find the stack) and that the package ships
 * what synthesis reads.
 */
import { App, CfnOutput, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SwarmCluster } from 'ec2-swarm';

const app = new App();
const stack = new Stack(app, 'Platform');
const vpc = new ec2.Vpc(stack, 'Vpc', {
  maxAzs: 2,
  natGateways: 1,
  subnetConfiguration: [
    { name: 'public', subnetType: ec2.SubnetType.PUBLIC },
    { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
  ],
});

const cluster = new SwarmCluster(stack, 'Swarm', {
  name: 'platform',
  vpc,
  vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
  managerInstanceType: ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.SMALL),
  workers: 2,
  minWorkers: 1,
  maxWorkers: 6,
  workerInstanceTypes: ['t3.medium', 't3a.medium'],
  workerSpot: { onDemandBaseCapacity: 1 },
  publishedPorts: [{ port: 443, cidrs: ['203.0.113.0/24'], peers: [ec2.Peer.prefixList('pl-0123456789abcdef0')] }],
  loadBalancer: true,
});

// Scaling between minWorkers and maxWorkers; the rolling update and the termination hook stay in place.
cluster.workers.scaleOnCpuUtilization('WorkerCpu', { targetUtilizationPercent: 60 });
// Host settings a service needs, before the node joins.
cluster.addUserDataBeforeJoin('workers', 'sysctl -w vm.max_map_count=262144');

// The pipeline's role may run `ec2-swarm deploy|verify|scale|teardown` against this cluster, and nothing more.
const ci = new iam.Role(stack, 'Deployer', { assumedBy: new iam.AccountPrincipal(stack.account) });
cluster.grantOperate(ci);

// SwarmCluster is IConnectable: a cache that only the nodes reach.
const cache = new ec2.SecurityGroup(stack, 'Cache', { vpc, description: 'cache: only the swarm nodes' });
cache.connections.allowFrom(cluster, ec2.Port.tcp(6379), 'swarm nodes');

new CfnOutput(stack, 'ClusterVpcId', { value: cluster.vpc.vpcId });
app.synth();
