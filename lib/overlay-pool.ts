/**
 * Docker's default overlay pool (10.0.0.0/8 in /24s) collides with the usual VPC range 10.0.0.0/16; this one sits
 * in 172.16.0.0/12 clear of Docker's own bridges (docker0 172.17.0.0/16, docker_gwbridge 172.18.0.0/16).
 */
export const DEFAULT_OVERLAY_ADDRESS_POOL = '172.20.0.0/16';
export const DEFAULT_OVERLAY_ADDRESS_POOL_MASK = 24;
