/**
 * The overlay address pool must not overlap the VPC: a container whose overlay subnet covers a VPC address (the
 * DNS resolver, an RDS instance) cannot reach it. Pure IPv4 range arithmetic, no CDK.
 */
import { isIP } from 'node:net';
import { SwarmError } from '../errors';

/** First and last address of an IPv4 CIDR as unsigned 32-bit numbers; undefined for anything else. */
export function ipv4Range(cidr: string): [number, number] | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr);
  if (!m || isIP(m[1]) !== 4) return undefined;
  const bits = Number(m[2]);
  if (bits > 32) return undefined;
  const ip = m[1].split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const size = 2 ** (32 - bits);
  const start = Math.floor(ip / size) * size;
  return [start, start + size - 1];
}

/** True when the two IPv4 CIDRs share at least one address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const ra = ipv4Range(a);
  const rb = ipv4Range(b);
  if (!ra || !rb) return false;
  return ra[0] <= rb[1] && rb[0] <= ra[1];
}

/**
 * Refuses a pool that overlaps one of the VPC's CIDRs, naming both ranges. CIDRs not known at synth time
 * (tokens, passed as undefined) are skipped: CloudFormation knows them, this check cannot.
 */
export function checkAddressPool(pool: string, vpcCidrs: ReadonlyArray<string | undefined>): void {
  for (const vpcCidr of vpcCidrs) {
    if (vpcCidr !== undefined && cidrsOverlap(pool, vpcCidr)) {
      throw SwarmError.user(
        'PROPS_INVALID',
        `✖ overlayAddressPool ${pool} overlaps the VPC CIDR ${vpcCidr}: containers could not reach VPC addresses in the shared range; choose a pool outside ${vpcCidr} (default 172.20.0.0/16)\n  → at overlayAddressPool`,
      );
    }
  }
}
