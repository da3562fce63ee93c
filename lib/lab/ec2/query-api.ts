/**
 * The lab's EC2 API: the Query protocol, Version 2016-11-15, XML answers shaped like EC2's, so
 * `aws ec2 describe-instances` and @aws-sdk/client-ec2 work against the lab. DescribeInstances (instance ids,
 * `tag:<key>`, `tag-key`, `instance-state-name`, `private-ip-address` filters), StopInstances, StartInstances,
 * TerminateInstances.
 */
import { QueryError, QueryParams, document, el, filterParams, isoTime, leaf, listParam } from '../cloud/query-protocol';
import { Ec2Error, Ec2Instance, Ec2Service, STATE_CODES, StateChange } from './instances';

export const EC2_VERSION = '2016-11-15';
const NS = `http://ec2.amazonaws.com/doc/${EC2_VERSION}/`;
export const EC2_ACTIONS = ['DescribeInstances', 'StopInstances', 'StartInstances', 'TerminateInstances'] as const;

const state = (name: keyof typeof STATE_CODES) => [leaf('code', STATE_CODES[name]), leaf('name', name)];

function instanceXml(i: Ec2Instance) {
  return el(
    'item',
    leaf('instanceId', i.instanceId),
    leaf('imageId', 'ami-0123456789abcdef0'),
    el('instanceState', ...state(i.state)),
    leaf('privateDnsName', i.state === 'terminated' ? '' : i.hostname),
    leaf('dnsName', ''),
    leaf('reason', i.reason ?? ''),
    leaf('amiLaunchIndex', 0),
    leaf('instanceType', i.instanceType ?? 't3.small'),
    i.instanceLifecycle ? leaf('instanceLifecycle', i.instanceLifecycle) : undefined,
    leaf('launchTime', isoTime(i.launchTime)),
    el('placement', leaf('availabilityZone', i.availabilityZone), leaf('groupName', ''), leaf('tenancy', 'default')),
    el('monitoring', leaf('state', 'disabled')),
    i.state === 'terminated' ? undefined : leaf('privateIpAddress', i.privateIp),
    leaf('architecture', 'x86_64'),
    leaf('rootDeviceType', 'ebs'),
    leaf('rootDeviceName', '/dev/xvda'),
    el('tagSet', ...Object.entries(i.tags).map(([k, v]) => el('item', leaf('key', k), leaf('value', v)))),
    leaf('hypervisor', 'xen'),
    i.reason && i.state !== 'running' ? el('stateReason', leaf('code', `Client.UserInitiated${i.state === 'stopped' ? 'Shutdown' : ''}`), leaf('message', i.reason)) : undefined,
  );
}

function matches(i: Ec2Instance, f: { name: string; values: string[] }): boolean {
  if (f.name.startsWith('tag:')) {
    const v = i.tags[f.name.slice(4)];
    return v !== undefined && f.values.some((w) => wildcard(w).test(v));
  }
  switch (f.name) {
    case 'tag-key':
      return f.values.some((k) => k in i.tags);
    case 'instance-state-name':
      return f.values.includes(i.state);
    case 'instance-id':
      return f.values.includes(i.instanceId);
    case 'private-ip-address':
      return i.state !== 'terminated' && f.values.includes(i.privateIp);
    default:
      throw new QueryError('InvalidParameterValue', `The filter '${f.name}' is invalid (the lab supports tag:<key>, tag-key, instance-state-name, instance-id, private-ip-address)`);
  }
}

/** EC2 filter values allow `*` and `?`. */
function wildcard(v: string): RegExp {
  return new RegExp(`^${v.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

function changesXml(root: string, changes: StateChange[]): (requestId: string) => string {
  return (requestId) =>
    document(
      root,
      NS,
      leaf('requestId', requestId),
      el('instancesSet', ...changes.map((c) => el('item', leaf('instanceId', c.instanceId), el('currentState', ...state(c.current)), el('previousState', ...state(c.previous))))),
    );
}

function ids(q: QueryParams, required: boolean): string[] {
  const list = listParam(q, 'InstanceId');
  if (required && list.length === 0) throw new QueryError('MissingParameter', "The request must contain the parameter InstanceId");
  if (list.length > 1000) throw new QueryError('InvalidParameterValue', 'at most 1000 instance ids');
  return list;
}

/** One EC2 action; returns a function of the request id that renders the XML answer. Throws QueryError. */
export function handleEc2(ec2: Ec2Service, action: string, q: QueryParams): (requestId: string) => string {
  try {
    switch (action) {
      case 'DescribeInstances': {
        const wanted = ids(q, false);
        const filters = filterParams(q, 'ec2');
        if (wanted.length > 0 && q.has('MaxResults')) throw new QueryError('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults');
        const found = wanted.length > 0 ? ec2.requireAll(wanted) : ec2.list();
        const list = found.filter((i) => filters.every((f) => matches(i, f)));
        const max = q.has('MaxResults') ? Number(q.get('MaxResults')) : undefined;
        if (max !== undefined && (!Number.isInteger(max) || max < 5 || max > 1000)) throw new QueryError('InvalidParameterValue', 'Value for parameter maxResults is invalid. Expecting a value between 5 and 1000');
        const start = q.has('NextToken') ? Number(Buffer.from(q.get('NextToken')!, 'base64').toString()) : 0;
        if (!Number.isInteger(start) || start < 0) throw new QueryError('InvalidParameterValue', 'Invalid NextToken');
        const page = max === undefined ? list : list.slice(start, start + max);
        const next = max !== undefined && start + max < list.length ? Buffer.from(String(start + max)).toString('base64') : undefined;
        return (requestId) =>
          document(
            'DescribeInstancesResponse',
            NS,
            leaf('requestId', requestId),
            el(
              'reservationSet',
              ...page.map((i) =>
                el('item', leaf('reservationId', `r-${i.instanceId.slice(2)}`), leaf('ownerId', '123456789012'), el('groupSet'), el('instancesSet', instanceXml(i))),
              ),
            ),
            leaf('nextToken', next),
          );
      }
      case 'StopInstances':
        return changesXml('StopInstancesResponse', ec2.stopInstances(ids(q, true)));
      case 'StartInstances':
        return changesXml('StartInstancesResponse', ec2.startInstances(ids(q, true)));
      case 'TerminateInstances':
        return changesXml('TerminateInstancesResponse', ec2.terminateInstances(ids(q, true)));
      default:
        throw new QueryError('InvalidAction', `The action ${action} is not valid for this web service (the lab implements ${EC2_ACTIONS.join(', ')}).`);
    }
  } catch (e) {
    if (e instanceof Ec2Error) throw new QueryError(e.code, e.message);
    throw e;
  }
}
