/**
 * The credentials the lab issues, and the lookup its endpoints verify signatures with (sigv4.ts): the operator's
 * fixed lab key (../lab-location.ts: the ops CLI and SDK clients on the lab target sign with it) and each
 * instance's role credentials, which the lab IMDS hands out. Instance keys are derived from the instance id, so
 * the controller and the gateway's IMDS agree without sharing state.
 */
import { createHash } from 'node:crypto';
import type { SigV4Key } from './sigv4';
import { LAB_OPERATOR_CREDENTIALS } from '../lab-location';

export { LAB_OPERATOR_CREDENTIALS };

const hex = (seed: string, n: number): string => createHash('sha256').update(seed).digest('hex').slice(0, n);

/** The role credentials of a lab instance (what its IMDS answers under iam/security-credentials/<role>). */
export function instanceRoleCredentials(instanceId: string): Required<Omit<SigV4Key, 'region'>> {
  return {
    accessKeyId: 'ASIA' + hex(`key:${instanceId}`, 16).toUpperCase(),
    secretAccessKey: hex(`secret:${instanceId}`, 40),
    sessionToken: Buffer.from(`lab-session-token:${instanceId}`).toString('base64'),
  };
}

export interface LabKey extends SigV4Key {
  /** The instance whose role credentials these are; undefined for the operator. */
  readonly instanceId?: string;
}

/** Finds the key of an access key id: the operator's, or the role key of one of `instanceIds()` (looked up now). */
export function labKeys(instanceIds: () => Iterable<string>): (accessKeyId: string) => LabKey | undefined {
  return (id) => {
    if (id === LAB_OPERATOR_CREDENTIALS.accessKeyId) return LAB_OPERATOR_CREDENTIALS;
    if (!id.startsWith('ASIA')) return undefined;
    for (const instanceId of instanceIds()) {
      const c = instanceRoleCredentials(instanceId);
      if (c.accessKeyId === id) return { ...c, instanceId };
    }
    return undefined;
  };
}
