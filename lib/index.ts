/**
 * ec2-swarm, the construct entry point (loads aws-cdk-lib). The ops API, which loads no CDK, is `ec2-swarm/ops`.
 */
export * from './cluster/props';
export * from './cluster/swarm-cluster';
export * from './cluster/swarm-stack';
export * from './cluster/user-data';
export * from './cluster/plan';
export * from './config';
export * from './errors';
export * from './cluster/swarm-app';
