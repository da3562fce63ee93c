/**
 * Docker's rejections of the user's input (design.md decision 13: input Docker rejects is the user's, exit 2),
 * told apart from the cluster's own failures by their messages. Messages as Docker 20.10–28 print them.
 */
import { redactSecrets } from '../aws-errors';

/** Lines that say the input itself is wrong (the spec, the compose file, a reference, a constraint). */
const REJECTION = [
  /code = InvalidArgument/, // swarmkit's controlapi validation (names, images, ports, mounts …)
  /constraint expected one operator/,
  /\binvalid constraint\b/i,
  /\bvalue '.*' is invalid\b/, // a placement constraint's value
  /\bkey '.*' is invalid\b/,
  /invalid interpolation format/,
  /invalid (image )?reference( format)?/,
  /is not a valid repository\/tag/,
  /invalid argument ".*" for ".*" flag/,
  /^(services|networks|volumes|configs|secrets)\.\S+ (must be|is|are|does|Additional property)/,
  /^\(root\) Additional property/,
  /Additional property \S+ is not allowed/,
  /refers to undefined (network|volume|config|secret)/,
  /^Top-level object must be a mapping/,
  /unsupported Compose file version/i,
  /^yaml: /,
];

/** Failures of the cluster or the transport, never the user's, even when the wording resembles one above. */
const NOT_THE_USER = [/Cannot connect to the Docker daemon/, /code = (Unavailable|DeadlineExceeded|Internal)/, /does not have a leader/, /context deadline exceeded/];

/** Docker's message when stderr says Docker rejected the input; undefined for any other failure. */
export function dockerRejection(stderr: string): string | undefined {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.some((l) => NOT_THE_USER.some((re) => re.test(l)))) return undefined;
  const hit = lines.find((l) => REJECTION.some((re) => re.test(l)));
  return hit ? redactSecrets(hit.replace(/^Error response from daemon: (rpc error: code = \w+ desc = )?/, '').replace(/^failed to (create|update) service (\S+): Error response from daemon: (rpc error: code = \w+ desc = )?/, 'service $2: ')) : undefined;
}

/** Docker's notes that are not about the user's deploy (printed by `docker stack deploy` since Docker 25). */
export const DOCKER_NOISE = [/^Since --detach=false was not specified/, /^In a future release, --detach=false will become the default/];
