// Type-checked under the legacy moduleResolution node10 (no `exports`): `ec2-swarm/ops` resolves through
// typesVersions.
import { SwarmCluster, type SwarmClusterProps } from 'ec2-swarm';
import { connect, type ConnectOptions } from 'ec2-swarm/ops';

const props: SwarmClusterProps = { name: 'typed', workers: 2 };
// @ts-expect-error - connect takes options: proves ec2-swarm/ops has its declarations
void connect(42);
const options: ConnectOptions = { outputsFile: 'out.json' };
export { SwarmCluster, props, options };
