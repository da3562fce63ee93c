/**
 * Routes Query-protocol requests (EC2, Auto Scaling) that reach the lab cloud's endpoint, by the `Version` every
 * such request carries, and enforces what the construct's IAM policies intend for hosts: managers may describe
 * instances and groups and complete lifecycle actions (their reconciler); workers may call none of these; the
 * operator on loopback is the account's administrator.
 */
import { randomUUID } from 'node:crypto';
import { ASG_NAMESPACE, ASG_VERSION, handleAutoScaling } from '../autoscaling/query-api';
import type { AutoScalingService } from '../autoscaling/groups';
import { EC2_VERSION, handleEc2 } from '../ec2/query-api';
import type { Ec2Service } from '../ec2/instances';
import type { Caller } from '../ssm/run-command';
import { QueryError, QueryParams, renderAsgError, renderEc2Error } from './query-protocol';

export interface QueryAnswer {
  readonly status: number;
  readonly body: string;
  readonly requestId: string;
  /** For the request log. */
  readonly service: 'ec2' | 'autoscaling' | 'unknown';
  readonly action: string;
  readonly error?: string;
}

/** What a host's role may call (the construct's policies, decision 2). */
export const HOST_QUERY_ACTIONS: Record<'manager' | 'worker', ReadonlySet<string>> = {
  manager: new Set(['ec2:DescribeInstances', 'autoscaling:DescribeAutoScalingInstances', 'autoscaling:DescribeAutoScalingGroups', 'autoscaling:CompleteLifecycleAction']),
  worker: new Set(),
};

export function createQueryApi(o: {
  ec2: Ec2Service;
  autoscaling: AutoScalingService;
  region: string;
  accountId: string;
  clusterName: string;
  roleOf: (instanceId: string) => 'manager' | 'worker' | undefined;
}): (params: QueryParams, caller: Caller) => QueryAnswer {
  return (params, caller) => {
    const requestId = randomUUID();
    const version = params.get('Version') ?? '';
    const action = params.get('Action') ?? '';
    const service = version === EC2_VERSION ? 'ec2' : version === ASG_VERSION ? 'autoscaling' : 'unknown';
    const render = (e: QueryError): string => (service === 'autoscaling' ? renderAsgError(e, requestId, ASG_NAMESPACE) : renderEc2Error(e, requestId));
    try {
      if (service === 'unknown') throw new QueryError('InvalidAction', `the lab serves the Query protocol for EC2 (Version ${EC2_VERSION}) and Auto Scaling (Version ${ASG_VERSION}), not Version ${JSON.stringify(version)}`);
      if (!action) throw new QueryError('MissingAction', 'The request must contain the parameter Action');
      if (caller.via !== 'tcp') {
        const role = caller.instanceId ? o.roleOf(caller.instanceId) : undefined;
        if (!role || !HOST_QUERY_ACTIONS[role].has(`${service}:${action}`)) {
          const who = role ? `arn:aws:sts::${o.accountId}:assumed-role/ec2-swarm-${o.clusterName}-${role}/${caller.instanceId}` : `unknown caller ${caller.sourceIp ?? '?'}`;
          const msg = `User: ${who} is not authorized to perform: ${service}:${action} because no identity-based policy allows the ${service}:${action} action`;
          throw service === 'ec2' ? new QueryError('UnauthorizedOperation', `You are not authorized to perform this operation. ${msg}`, 403) : new QueryError('AccessDenied', msg, 403);
        }
      }
      const out = service === 'ec2' ? handleEc2(o.ec2, action, params) : handleAutoScaling(o.autoscaling, o.region, action, params);
      return { status: 200, body: out(requestId), requestId, service, action };
    } catch (e) {
      const err = e instanceof QueryError ? e : new QueryError('InternalError', `the lab ${service} stand-in failed: ${(e as Error)?.message}`, 500);
      return { status: err.statusCode, body: render(err), requestId, service, action, error: err.code };
    }
  };
}
