// Type-checked (never run) under each moduleResolution in checks/tsconfig.*.json, as a CommonJS module.
import { SwarmCluster, type SwarmClusterProps } from 'ec2-swarm';
import { connect, type ConnectOptions } from 'ec2-swarm/ops';

const props: SwarmClusterProps = { name: 'typed', workers: 2 };
// @ts-expect-error - workers is a number: proves the props are typed, not `any`
const wrong: SwarmClusterProps = { workers: 'two' };
const options: ConnectOptions = { outputsFile: 'out.json' };
// @ts-expect-error - connect takes options: proves ec2-swarm/ops has its declarations
void connect(42);
export { SwarmCluster, connect, props, wrong, options };
