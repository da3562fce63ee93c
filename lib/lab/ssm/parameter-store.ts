/**
 * The lab's SSM Parameter Store: in memory, the documented behaviours the cluster relies on.
 *
 * - SecureString values are kept encrypted (AES-256-GCM, a key that lives only in this process) and returned in
 *   clear only with WithDecryption=true; otherwise the caller gets the ciphertext, as from the real service.
 * - PutParameter without Overwrite on an existing name → ParameterAlreadyExists; every put increments Version.
 * - Missing names → ParameterNotFound (no message, like AWS); GetParameters/DeleteParameters list them as
 *   InvalidParameters instead.
 * - GetParametersByPath: one level unless Recursive, pages of MaxResults (1-10, default 10) with NextToken.
 *
 * Never logs or prints a value (decision 2: join tokens live here).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SsmServiceError, validation } from './errors';

export type ParameterType = 'String' | 'StringList' | 'SecureString';
const TYPES: readonly ParameterType[] = ['SecureString', 'StringList', 'String'];

/** What the real service returns for a parameter (timestamps as epoch seconds, the JSON protocol's encoding). */
export interface ParameterView {
  Name: string;
  Type: ParameterType;
  Value: string;
  Version: number;
  LastModifiedDate: number;
  ARN: string;
  DataType: string;
  Selector?: string;
}

interface StoredVersion {
  type: ParameterType;
  /** Plain text for String/StringList; iv|tag|ciphertext for SecureString. */
  value: Buffer;
  version: number;
  modified: number;
  keyId?: string;
}

const NAME_CHARS = /^[a-zA-Z0-9_.\-/]+$/;
const MAX_NAME = 1011;
const MAX_VALUE = 4096;
const MAX_LEVELS = 15;

/** The constraint message the service uses for a member that fails validation. */
function constraint(value: unknown, member: string, rule: string): SsmServiceError {
  return validation(`1 validation error detected: Value '${String(value)}' at '${member}' failed to satisfy constraint: ${rule}`);
}

export class ParameterStore {
  private readonly params = new Map<string, StoredVersion[]>();
  /** Lives only in this process: nothing on disk or in logs can reveal a SecureString. */
  private readonly key = randomBytes(32);

  constructor(
    private readonly region = 'us-east-1',
    private readonly account = '123456789012',
    private readonly now: () => number = Date.now,
  ) {}

  putParameter(input: Record<string, unknown>): { Version: number; Tier: string } {
    const name = this.checkName(input.Name, 'name');
    const value = input.Value;
    if (typeof value !== 'string') throw constraint(value, 'value', 'Member must not be null');
    if (value.length < 1) throw constraint(value, 'value', 'Member must have length greater than or equal to 1');
    if (value.length > MAX_VALUE) {
      throw validation(
        `Standard tier parameters support a maximum parameter value of ${MAX_VALUE} characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.`,
      );
    }
    const existing = this.params.get(name);
    let type = input.Type as ParameterType | undefined;
    if (type !== undefined && !TYPES.includes(type)) {
      throw constraint(type, 'type', `Member must satisfy enum value set: [${TYPES.join(', ')}]`);
    }
    if (input.Overwrite !== undefined && typeof input.Overwrite !== 'boolean') {
      throw constraint(input.Overwrite, 'overwrite', 'Member must be a boolean');
    }
    if (existing) {
      if (input.Overwrite !== true) {
        throw new SsmServiceError(
          'ParameterAlreadyExists',
          'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.',
        );
      }
      type ??= existing[existing.length - 1].type;
    } else if (type === undefined) {
      throw validation('A parameter type is required when you create a parameter.');
    }
    if (input.Tier !== undefined && input.Tier !== 'Standard' && input.Tier !== 'Intelligent-Tiering') {
      throw validation(`The lab supports only the Standard tier (got ${String(input.Tier)}).`);
    }
    const keyId = type === 'SecureString' ? (typeof input.KeyId === 'string' ? input.KeyId : 'alias/aws/ssm') : undefined;
    const history = existing ?? [];
    const version = history.length === 0 ? 1 : history[history.length - 1].version + 1;
    history.push({ type, value: type === 'SecureString' ? this.encrypt(value) : Buffer.from(value, 'utf8'), version, modified: this.now(), keyId });
    // The service keeps the last 100 versions.
    if (history.length > 100) history.shift();
    this.params.set(name, history);
    return { Version: version, Tier: 'Standard' };
  }

  getParameter(input: Record<string, unknown>): { Parameter: ParameterView } {
    const raw = input.Name;
    if (typeof raw !== 'string' || raw.length === 0) throw constraint(raw, 'name', 'Member must not be null');
    const decrypt = this.decryptFlag(input.WithDecryption);
    // `name:3` selects a version (labels are not supported in the lab).
    const sel = /^(.*):(\d+)$/.exec(raw);
    const name = sel ? sel[1] : raw;
    const history = this.params.get(name);
    if (!history) throw new SsmServiceError('ParameterNotFound');
    let entry = history[history.length - 1];
    if (sel) {
      const found = history.find((h) => h.version === Number(sel[2]));
      if (!found) throw new SsmServiceError('ParameterVersionNotFound', `Systems Manager could not find version ${sel[2]} of ${name}. Verify the version and try again.`);
      entry = found;
    }
    const view = this.view(name, entry, decrypt);
    if (sel) view.Selector = `:${sel[2]}`;
    return { Parameter: view };
  }

  getParameters(input: Record<string, unknown>): { Parameters: ParameterView[]; InvalidParameters: string[] } {
    const names = this.nameList(input.Names, 'names');
    const decrypt = this.decryptFlag(input.WithDecryption);
    const Parameters: ParameterView[] = [];
    const InvalidParameters: string[] = [];
    for (const name of names) {
      const history = this.params.get(name);
      if (history) Parameters.push(this.view(name, history[history.length - 1], decrypt));
      else InvalidParameters.push(name);
    }
    return { Parameters, InvalidParameters };
  }

  getParametersByPath(input: Record<string, unknown>): { Parameters: ParameterView[]; NextToken?: string } {
    const path = input.Path;
    if (typeof path !== 'string' || path.length === 0) throw constraint(path, 'path', 'Member must not be null');
    if (!path.startsWith('/') || !NAME_CHARS.test(path)) {
      throw validation('The parameter doesn\'t meet the parameter name requirements. The parameter name must begin with a forward slash "/".');
    }
    const decrypt = this.decryptFlag(input.WithDecryption);
    const recursive = input.Recursive === true;
    const max = input.MaxResults === undefined ? 10 : input.MaxResults;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 10) {
      throw constraint(max, 'maxResults', 'Member must have value less than or equal to 10');
    }
    const prefix = path.endsWith('/') ? path : `${path}/`;
    const matches = [...this.params.keys()]
      .filter((n) => n.startsWith(prefix) && n.length > prefix.length && (recursive || !n.slice(prefix.length).includes('/')))
      .sort();
    let start = 0;
    if (input.NextToken !== undefined) {
      const decoded = typeof input.NextToken === 'string' ? decodeToken(input.NextToken) : undefined;
      if (!decoded || decoded.path !== path) throw new SsmServiceError('InvalidNextToken', 'The specified token is not valid.');
      // Resume after the last name returned, so deletions between pages skip nothing.
      start = matches.findIndex((n) => n > decoded.after);
      if (start < 0) start = matches.length;
    }
    const page = matches.slice(start, start + max);
    const Parameters = page.map((n) => {
      const h = this.params.get(n)!;
      return this.view(n, h[h.length - 1], decrypt);
    });
    const more = start + max < matches.length;
    return more ? { Parameters, NextToken: encodeToken({ path, after: page[page.length - 1] }) } : { Parameters };
  }

  deleteParameter(input: Record<string, unknown>): Record<string, never> {
    const name = input.Name;
    if (typeof name !== 'string' || name.length === 0) throw constraint(name, 'name', 'Member must not be null');
    if (!this.params.delete(name)) throw new SsmServiceError('ParameterNotFound');
    return {};
  }

  deleteParameters(input: Record<string, unknown>): { DeletedParameters: string[]; InvalidParameters: string[] } {
    const names = this.nameList(input.Names, 'names');
    const DeletedParameters: string[] = [];
    const InvalidParameters: string[] = [];
    for (const n of names) (this.params.delete(n) ? DeletedParameters : InvalidParameters).push(n);
    return { DeletedParameters, InvalidParameters };
  }

  /** Names currently stored (for lab diagnostics; never the values). */
  names(): string[] {
    return [...this.params.keys()].sort();
  }

  private view(name: string, v: StoredVersion, decrypt: boolean): ParameterView {
    let value: string;
    if (v.type !== 'SecureString') value = v.value.toString('utf8');
    else value = decrypt ? this.decrypt(v.value) : v.value.toString('base64');
    return {
      Name: name,
      Type: v.type,
      Value: value,
      Version: v.version,
      LastModifiedDate: v.modified / 1000,
      ARN: `arn:aws:ssm:${this.region}:${this.account}:parameter/${name.replace(/^\//, '')}`,
      DataType: 'text',
    };
  }

  private checkName(name: unknown, member: string): string {
    if (typeof name !== 'string') throw constraint(name, member, 'Member must not be null');
    if (name.length < 1 || name.length > MAX_NAME) throw constraint(name, member, `Member must have length less than or equal to ${MAX_NAME}`);
    const bare = name.replace(/^\//, '');
    if (!NAME_CHARS.test(name) || /^(aws|ssm)/i.test(bare) || name.includes('//') || (name.endsWith('/') && name !== '/')) {
      throw validation(
        'Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_',
      );
    }
    if (name.includes('/') && !name.startsWith('/')) throw validation('Parameter name must be a fully qualified name.');
    if (name.split('/').length - 1 > MAX_LEVELS) {
      throw new SsmServiceError('HierarchyLevelLimitExceededException', `Parameter name hierarchy is limited to ${MAX_LEVELS} levels.`);
    }
    return name;
  }

  private nameList(names: unknown, member: string): string[] {
    if (!Array.isArray(names) || names.length === 0) throw constraint(names, member, 'Member must have length greater than or equal to 1');
    if (names.length > 10) throw constraint(`[${names.join(', ')}]`, member, 'Member must have length less than or equal to 10');
    if (!names.every((n) => typeof n === 'string' && n.length > 0)) throw constraint(names, member, 'Member must not be null');
    return names as string[];
  }

  private decryptFlag(v: unknown): boolean {
    if (v !== undefined && typeof v !== 'boolean') throw constraint(v, 'withDecryption', 'Member must be a boolean');
    return v === true;
  }

  private encrypt(plain: string): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]);
  }

  private decrypt(blob: Buffer): string {
    const d = createDecipheriv('aes-256-gcm', this.key, blob.subarray(0, 12));
    d.setAuthTag(blob.subarray(12, 28));
    return Buffer.concat([d.update(blob.subarray(28)), d.final()]).toString('utf8');
  }
}

function encodeToken(t: { path: string; after: string }): string {
  return Buffer.from(JSON.stringify(t), 'utf8').toString('base64');
}

function decodeToken(s: string): { path: string; after: string } | undefined {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64').toString('utf8'));
    return typeof t?.path === 'string' && typeof t?.after === 'string' ? t : undefined;
  } catch {
    return undefined;
  }
}
