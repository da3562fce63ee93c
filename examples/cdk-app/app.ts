/**
 * A consumer's CDK app: its own aws-cdk-lib (an older minor than ec2-swarm is built with), its own Stack, and the
 * SwarmCluster construct from the installed package. Synthesizing proves the construct and the app share one
 * aws-cdk-lib (a second copy would not find the stack) and that the package ships what synthesis reads.
 */
import { App, CfnOutput, Stack } from 'aws-cdk-lib';
import { SwarmCluster } from 'ec2-swarm';

const app = new App();
const stack = new Stack(app, 'Platform');
const cluster = new SwarmCluster(stack, 'Swarm', { name: 'platform', workers: 2 });
new CfnOutput(stack, 'ClusterVpcId', { value: cluster.vpc.vpcId });
app.synth();
