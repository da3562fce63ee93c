/**
 * The lab's Auto Scaling API: the Query protocol, Version 2011-01-01 (members as `Name.member.N`), XML answers
 * shaped like the service's, so `aws autoscaling …` and SDK clients work against the lab.
 */
import { QueryError, QueryParams, document, el, filterParams, isoTime, leaf, listParam } from '../cloud/query-protocol';
import { AsgError, AutoScalingService, type GroupSpec } from './groups';

/** A group's `LaunchTemplate`, or its `MixedInstancesPolicy` over that launch template, as DescribeAutoScalingGroups gives it. */
function launchTemplateXml(spec: GroupSpec) {
  const lt = () => [leaf('LaunchTemplateId', spec.launchTemplate.id), leaf('LaunchTemplateName', spec.launchTemplate.name), leaf('Version', spec.launchTemplate.version)];
  const policy = spec.mixedInstancesPolicy;
  if (!policy) return el('LaunchTemplate', ...lt());
  return el(
    'MixedInstancesPolicy',
    el('LaunchTemplate', el('LaunchTemplateSpecification', ...lt()), el('Overrides', ...policy.instanceTypes.map((t) => el('member', leaf('InstanceType', t))))),
    el(
      'InstancesDistribution',
      leaf('OnDemandBaseCapacity', policy.onDemandBaseCapacity),
      leaf('OnDemandPercentageAboveBaseCapacity', policy.onDemandPercentageAboveBaseCapacity),
    ),
  );
}

export const ASG_VERSION = '2011-01-01';
export const ASG_NAMESPACE = `http://autoscaling.amazonaws.com/doc/${ASG_VERSION}/`;
export const ASG_ACTIONS = [
  'DescribeAutoScalingInstances',
  'DescribeAutoScalingGroups',
  'CompleteLifecycleAction',
  'SetDesiredCapacity',
  'TerminateInstanceInAutoScalingGroup',
  'UpdateAutoScalingGroup',
] as const;

const ACCOUNT = '123456789012';

function required(q: QueryParams, name: string): string {
  const v = q.get(name);
  if (v === undefined || v === '') throw new QueryError('ValidationError', `1 validation error detected: Value null at '${name[0].toLowerCase()}${name.slice(1)}' failed to satisfy constraint: Member must not be null`);
  return v;
}

function wholeNumber(q: QueryParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d{1,6}$/.test(v) || !Number.isInteger(n)) throw new QueryError('ValidationError', `${name} must be a whole number (got ${v})`);
  return n;
}

function response(action: string, result: ReturnType<typeof el> | undefined): (requestId: string) => string {
  return (requestId) => document(`${action}Response`, ASG_NAMESPACE, result ?? el(`${action}Result`), el('ResponseMetadata', leaf('RequestId', requestId)));
}

export function handleAutoScaling(asg: AutoScalingService, region: string, action: string, q: QueryParams): (requestId: string) => string {
  const arn = (name: string): string => `arn:aws:autoscaling:${region}:${ACCOUNT}:autoScalingGroup:00000000-0000-4000-8000-000000000000:autoScalingGroupName/${name}`;
  try {
    switch (action) {
      case 'DescribeAutoScalingInstances': {
        const ids = listParam(q, 'InstanceIds', true);
        if (ids.length > 50) throw new QueryError('ValidationError', 'InstanceIds: at most 50');
        const rows = asg
          .describeGroups([])
          .flatMap((g) => g.members.map((m) => ({ g, m })))
          .filter(({ m }) => ids.length === 0 || ids.includes(m.instanceId));
        return response(
          action,
          el(
            `${action}Result`,
            el(
              'AutoScalingInstances',
              ...rows.map(({ g, m }) =>
                el(
                  'member',
                  leaf('InstanceId', m.instanceId),
                  leaf('InstanceType', m.inst?.instanceType ?? 't3.small'),
                  leaf('AutoScalingGroupName', g.spec.name),
                  leaf('AvailabilityZone', m.inst?.availabilityZone ?? g.spec.availabilityZones[0]),
                  leaf('LifecycleState', m.state),
                  leaf('HealthStatus', m.inst && (m.inst.state === 'running' || m.inst.state === 'pending') ? 'HEALTHY' : 'UNHEALTHY'),
                  el('LaunchTemplate', leaf('LaunchTemplateId', g.spec.launchTemplate.id), leaf('LaunchTemplateName', g.spec.launchTemplate.name), leaf('Version', g.spec.launchTemplate.version)),
                  leaf('ProtectedFromScaleIn', false),
                ),
              ),
            ),
          ),
        );
      }
      case 'DescribeAutoScalingGroups': {
        const names = listParam(q, 'AutoScalingGroupNames', true);
        const filters = filterParams(q, 'asg');
        const groups = asg.describeGroups(names).filter((g) =>
          filters.every((f) => {
            if (f.name.startsWith('tag:')) return g.spec.tags.some((t) => t.key === f.name.slice(4) && f.values.includes(t.value));
            if (f.name === 'tag-key') return g.spec.tags.some((t) => f.values.includes(t.key));
            if (f.name === 'tag-value') return g.spec.tags.some((t) => f.values.includes(t.value));
            throw new QueryError('ValidationError', `Filter name ${f.name} is not supported by the lab (tag:<key>, tag-key, tag-value)`);
          }),
        );
        return response(
          action,
          el(
            `${action}Result`,
            el(
              'AutoScalingGroups',
              ...groups.map((g) =>
                el(
                  'member',
                  leaf('AutoScalingGroupName', g.spec.name),
                  leaf('AutoScalingGroupARN', arn(g.spec.name)),
                  launchTemplateXml(g.spec),
                  leaf('MinSize', g.minSize),
                  leaf('MaxSize', g.maxSize),
                  leaf('DesiredCapacity', g.desired),
                  leaf('DefaultCooldown', 300),
                  el('AvailabilityZones', ...g.spec.availabilityZones.map((z) => leaf('member', z))),
                  el('LoadBalancerNames'),
                  el('TargetGroupARNs'),
                  leaf('HealthCheckType', 'EC2'),
                  leaf('HealthCheckGracePeriod', 0),
                  el(
                    'Instances',
                    ...g.members.map((m) =>
                      el(
                        'member',
                        leaf('InstanceId', m.instanceId),
                        leaf('InstanceType', m.inst?.instanceType ?? 't3.small'),
                        leaf('AvailabilityZone', m.inst?.availabilityZone ?? g.spec.availabilityZones[0]),
                        leaf('LifecycleState', m.state),
                        leaf('HealthStatus', m.inst && (m.inst.state === 'running' || m.inst.state === 'pending') ? 'Healthy' : 'Unhealthy'),
                        el('LaunchTemplate', leaf('LaunchTemplateId', g.spec.launchTemplate.id), leaf('LaunchTemplateName', g.spec.launchTemplate.name), leaf('Version', g.spec.launchTemplate.version)),
                        leaf('ProtectedFromScaleIn', false),
                      ),
                    ),
                  ),
                  leaf('CreatedTime', isoTime(g.createdTime)),
                  el('SuspendedProcesses'),
                  el('EnabledMetrics'),
                  el(
                    'Tags',
                    ...g.spec.tags.map((t) =>
                      el('member', leaf('ResourceId', g.spec.name), leaf('ResourceType', 'auto-scaling-group'), leaf('Key', t.key), leaf('Value', t.value), leaf('PropagateAtLaunch', t.propagateAtLaunch)),
                    ),
                  ),
                  el('TerminationPolicies', leaf('member', 'Default')),
                  leaf('NewInstancesProtectedFromScaleIn', false),
                  leaf('ServiceLinkedRoleARN', `arn:aws:iam::${ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`),
                ),
              ),
            ),
          ),
        );
      }
      case 'CompleteLifecycleAction': {
        const instanceId = q.get('InstanceId');
        const token = q.get('LifecycleActionToken');
        if (!instanceId && !token) throw new QueryError('ValidationError', 'Either InstanceId or LifecycleActionToken must be given');
        asg.completeLifecycleAction({
          group: required(q, 'AutoScalingGroupName'),
          hook: required(q, 'LifecycleHookName'),
          result: required(q, 'LifecycleActionResult'),
          ...(instanceId ? { instanceId } : {}),
          ...(token ? { token } : {}),
        });
        return response(action, undefined);
      }
      case 'SetDesiredCapacity': {
        asg.setDesiredCapacity(required(q, 'AutoScalingGroupName'), wholeNumber(q, 'DesiredCapacity') ?? Number(required(q, 'DesiredCapacity')));
        return response(action, undefined);
      }
      case 'UpdateAutoScalingGroup': {
        const name = required(q, 'AutoScalingGroupName');
        const min = wholeNumber(q, 'MinSize');
        const max = wholeNumber(q, 'MaxSize');
        const desired = wholeNumber(q, 'DesiredCapacity');
        asg.updateGroup(name, { ...(min !== undefined ? { minSize: min } : {}), ...(max !== undefined ? { maxSize: max } : {}), ...(desired !== undefined ? { desiredCapacity: desired } : {}) });
        return response(action, undefined);
      }
      case 'TerminateInstanceInAutoScalingGroup': {
        const id = required(q, 'InstanceId');
        const dec = required(q, 'ShouldDecrementDesiredCapacity');
        if (dec !== 'true' && dec !== 'false') throw new QueryError('ValidationError', `ShouldDecrementDesiredCapacity must be true or false (got ${dec})`);
        const r = asg.terminateInstanceInGroup(id, dec === 'true');
        const now = isoTime(Date.now());
        return response(
          action,
          el(
            `${action}Result`,
            el(
              'Activity',
              leaf('ActivityId', `00000000-0000-4000-8000-${id.slice(2, 14)}`),
              leaf('AutoScalingGroupName', r.group),
              leaf('Description', r.description),
              leaf('Cause', `At ${now} instance ${id} was taken out of service in response to a user request${dec === 'true' ? ', shrinking the capacity' : ''}.`),
              leaf('StartTime', now),
              leaf('StatusCode', 'InProgress'),
              leaf('Progress', 0),
              leaf('Details', '{}'),
            ),
          ),
        );
      }
      default:
        throw new QueryError('InvalidAction', `The action ${action} is not valid for this web service (the lab implements ${ASG_ACTIONS.join(', ')}).`);
    }
  } catch (e) {
    if (e instanceof AsgError) throw new QueryError(e.code, e.message);
    throw e;
  }
}
