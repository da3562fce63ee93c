/**
 * Service spec files (design.md): for users who do not want compose. YAML or JSON, validated by zod with
 * errors that name the field. Every value is also safe for the shell by construction: names and images follow
 * Docker's own grammar, env keys are identifiers, and free text (env values, command words) travels base64.
 */
import { z } from 'zod';
import { SwarmError } from '../errors';
import { ENV_KEY, IMAGE_REF, SERVICE_NAME, SERVICE_NAME_MAX } from './swarm/validate';

const port = z.number().int().min(1).max(65535);
/** Go durations as docker accepts them for --update-delay, or plain seconds. */
const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;
/**
 * A placement constraint as swarmkit parses it (manager/constraint): exactly one `==` or `!=`; the attribute
 * starts with a letter or `_` and has at least two of [A-Za-z0-9_.-]; the value is letters, digits, spaces and
 * `: - _ . * ( ) ? + [ ] \ ^ $ | /` (no quotes, no `<>~`). Anything else Docker rejects after connecting.
 */
const CONSTRAINT_KEY = /^[a-z_][a-z0-9\-_.]+$/i;
const CONSTRAINT_VALUE = /^[a-z0-9:\-_ \t.*()?+[\]\\^$|/]+$/i;
export function constraintProblem(c: string): string | undefined {
  const ops = c.match(/==|!=/g) ?? [];
  if (ops.length !== 1) return 'must have exactly one == or != (e.g. node.role==worker)';
  const [key, value] = c.split(/==|!=/).map((x) => x.trim());
  if (!CONSTRAINT_KEY.test(key)) return `attribute ${JSON.stringify(key)} is not one Docker accepts (e.g. node.role, node.labels.zone)`;
  if (!CONSTRAINT_VALUE.test(value)) return `value ${JSON.stringify(value)} has a character Docker does not accept in a constraint (letters, digits, spaces and : - _ . * ( ) ? + [ ] \\ ^ $ | /)`;
  return undefined;
}

export const serviceSpecSchema = z
  .strictObject({
    name: z
      .string()
      .max(SERVICE_NAME_MAX, { message: `must be at most ${SERVICE_NAME_MAX} characters` })
      .regex(SERVICE_NAME, { message: "must be letters, digits, '-' and '_', starting and ending with a letter or digit (Docker's service name rule)" }),
    image: z.string().max(512).regex(IMAGE_REF, { message: 'must be an image reference such as nginx:1.27 or registry.example.com/team/app@sha256:…' }),
    replicas: z.number().int().min(0).max(10000).optional(),
    mode: z.enum(['replicated', 'global']).default('replicated'),
    /** Overrides the image's CMD (passed as literal words). */
    command: z.array(z.string().refine((s) => !s.includes('\0'), { message: 'must not contain NUL' })).optional(),
    ports: z
      .array(
        z.strictObject({
          published: port,
          target: port,
          protocol: z.enum(['tcp', 'udp', 'sctp']).default('tcp'),
          mode: z.enum(['ingress', 'host']).default('ingress'),
        }),
      )
      .default([]),
    env: z
      .record(
        z.string().regex(ENV_KEY, { message: 'env keys must be variable names ([A-Za-z_][A-Za-z0-9_]*)' }),
        z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v)).refine((s) => !s.includes('\0'), { message: 'must not contain NUL' }),
      )
      .default({}),
    constraints: z
      .array(
        z.string().superRefine((c, ctx) => {
          const problem = constraintProblem(c);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
      )
      .default([]),
    /** `dnsrr` where there is no IPVS (the lab) or no virtual IP is wanted. */
    endpointMode: z.enum(['vip', 'dnsrr']).optional(),
    update: z
      .strictObject({
        parallelism: z.number().int().min(0).max(10000).optional(),
        delay: z.union([z.number().min(0).transform((n) => `${n}s`), z.string().regex(DURATION, { message: 'must be a duration such as 10s or 1m30s' })]).optional(),
        failureAction: z.enum(['pause', 'continue', 'rollback']).optional(),
        order: z.enum(['stop-first', 'start-first']).optional(),
      })
      .optional(),
  })
  .superRefine((s, ctx) => {
    if (s.mode === 'global' && s.replicas !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['replicas'], message: 'cannot be set with mode: global (one task per eligible node)' });
    }
  });

export const serviceSpecFileSchema = z
  .strictObject({ services: z.array(serviceSpecSchema).min(1, { message: 'list at least one service' }) })
  .superRefine((f, ctx) => {
    const seen = new Map<string, number>();
    f.services.forEach((s, i) => {
      const j = seen.get(s.name);
      if (j !== undefined) ctx.addIssue({ code: 'custom', path: ['services', i, 'name'], message: `${s.name} is listed twice (also at index ${j})` });
      seen.set(s.name, i);
    });
  });

export type ServiceSpec = z.output<typeof serviceSpecSchema>;
export type ServiceSpecFile = z.output<typeof serviceSpecFileSchema>;

/** Validates an already-parsed spec document; errors printed as zod's prettifyError prints them. */
export function parseServiceSpecFile(doc: unknown, source = 'service spec'): ServiceSpecFile {
  const r = serviceSpecFileSchema.safeParse(doc);
  if (!r.success) throw SwarmError.user('SPEC_INVALID', `Invalid service spec (${source}):\n${z.prettifyError(r.error)}`, r.error);
  return r.data;
}
