/**
 * The lab's TLS material, made with the openssl CLI: a lab CA and a server certificate for
 * `ssm.<region>.amazonaws.com` (plus the hub address and 127.0.0.1 for tests), so the real AWS CLI inside a host
 * talks HTTPS to its default SSM endpoint — resolved by the host's /etc/hosts to the gateway — and verifies it
 * against the lab CA given as AWS_CA_BUNDLE. Keys are 0600. Nothing here is trusted by the machine itself.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

export interface LabTlsOptions {
  /** Directory for the files (created 0700), e.g. `<labdir>/tls`. */
  readonly dir: string;
  readonly region: string;
  /** Extra IP SANs (the hub address). 127.0.0.1 is always included. */
  readonly ipAddresses?: readonly string[];
  /** Extra DNS SANs. `ssm.<region>.amazonaws.com` is always included. */
  readonly dnsNames?: readonly string[];
}

export interface LabTls {
  /** The CA certificate: what the hosts' AWS CLI gets as AWS_CA_BUNDLE. */
  readonly caCert: string;
  readonly caKey: string;
  readonly cert: string;
  readonly key: string;
}

const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
const DNS = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function ssmHostname(region: string): string {
  return `ssm.${region}.amazonaws.com`;
}

/** Every AWS endpoint the lab serves to hosts through the gateway's HTTPS front (one certificate for all). */
export function awsHostnames(region: string): string[] {
  return ['ssm', 'ec2', 'autoscaling'].map((s) => `${s}.${region}.amazonaws.com`);
}

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A private key written 0600 from the start (generated to stdout, never world-readable on disk). */
function newKey(path: string): void {
  const pem = openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  writeFileSync(path, pem, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/**
 * Creates the CA and server certificate, or reuses them when they already cover exactly these names
 * (a lab restarted with the same settings keeps its CA). Throws Error naming a bad region/name/address.
 */
export function ensureLabTls(opts: LabTlsOptions): LabTls {
  if (!REGION.test(opts.region)) throw new Error(`region must look like us-east-1 (got ${JSON.stringify(opts.region)})`);
  const ips = ['127.0.0.1', ...(opts.ipAddresses ?? [])];
  for (const ip of ips) if (isIP(ip) === 0) throw new Error(`ipAddresses: ${JSON.stringify(ip)} is not an IP address`);
  const dns = [ssmHostname(opts.region), ...(opts.dnsNames ?? [])];
  for (const d of dns) if (!DNS.test(d)) throw new Error(`dnsNames: ${JSON.stringify(d)} is not a DNS name`);
  const san = [...new Set(dns)].map((d) => `DNS:${d}`).concat([...new Set(ips)].map((i) => `IP:${i}`)).join(',');

  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const files: LabTls = {
    caCert: join(opts.dir, 'lab-ca.pem'),
    caKey: join(opts.dir, 'lab-ca.key'),
    cert: join(opts.dir, 'ssm.pem'),
    key: join(opts.dir, 'ssm.key'),
  };
  const sanFile = join(opts.dir, 'ssm.san');
  if (Object.values(files).every((f) => existsSync(f)) && existsSync(sanFile) && readFileSync(sanFile, 'utf8') === san) return files;

  const cnf = join(opts.dir, 'openssl.cnf');
  writeFileSync(
    cnf,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      'CN = ec2-swarm lab CA',
      '[ca_ext]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      '[server_ext]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature', // ECDSA keys sign; no key encipherment
      'extendedKeyUsage = serverAuth',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      `subjectAltName = ${san}`,
      '',
    ].join('\n'),
  );
  newKey(files.caKey);
  openssl(['req', '-x509', '-new', '-config', cnf, '-extensions', 'ca_ext', '-key', files.caKey, '-sha256', '-days', '825', '-out', files.caCert]);
  newKey(files.key);
  const csr = join(opts.dir, 'ssm.csr');
  openssl(['req', '-new', '-config', cnf, '-key', files.key, '-subj', `/CN=${ssmHostname(opts.region)}`, '-out', csr]);
  openssl([
    'x509', '-req', '-in', csr, '-CA', files.caCert, '-CAkey', files.caKey, '-set_serial', `0x${Date.now().toString(16)}`,
    '-sha256', '-days', '397', '-extfile', cnf, '-extensions', 'server_ext', '-out', files.cert,
  ]);
  rmSync(csr, { force: true });
  writeFileSync(sanFile, san);
  return files;
}
