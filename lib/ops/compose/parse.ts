/**
 * Pass 1: YAML text → plain data. Merge keys (`<<`) are honoured everywhere, as docker's YAML decoder does.
 * Aliases are allowed as freely as `docker stack config` allows them (a 300-service file merging one anchor
 * into each is normal) and bounded by the size the document expands to, which is what an alias bomb inflates.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import { composeError } from './errors';

/** Nodes the document may expand to once aliases are resolved; a billion-laughs file needs far more. */
export const MAX_EXPANDED_NODES = 1_000_000;

export interface ParseOptions {
  /** @default MAX_EXPANDED_NODES */
  readonly maxExpandedNodes?: number;
}

/** Counts nodes after alias expansion without expanding anything (each anchor's size is computed once). */
function expandedSize(root: unknown, limit: number): number {
  const anchors = new Map<string, unknown>();
  const sizes = new Map<unknown, number>();
  const onStack = new Set<unknown>();
  const size = (node: unknown): number => {
    if (node === null || node === undefined) return 1;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    if (onStack.has(node)) throw new RangeError('an alias refers to a node that contains it');
    onStack.add(node);
    const anchor = (node as { anchor?: string }).anchor;
    let n = 1;
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (target === undefined) throw new RangeError(`alias *${node.source} has no anchor before it`);
      n = size(target);
    } else {
      // The anchor is visible to aliases inside its own node only after it: record it before the children.
      if (anchor) anchors.set(anchor, node);
      if (isMap(node) || isSeq(node)) {
        for (const item of node.items) {
          if (isPair(item)) n += size(item.key) + size(item.value);
          else n += size(item);
          if (n > limit) break;
        }
      } else if (!isScalar(node) && isPair(node)) {
        n += size(node.key) + size(node.value);
      }
    }
    if (anchor && !isAlias(node)) anchors.set(anchor, node);
    onStack.delete(node);
    sizes.set(node, n);
    if (n > limit) throw new RangeError('excessive aliasing');
    return n;
  };
  return size(root);
}

/** Parses one compose file's text; throws SwarmError(user) naming `source`. Returns the top-level mapping. */
export function parseComposeYaml(text: string, source: string, opts: ParseOptions = {}): Record<string, unknown> {
  const limit = opts.maxExpandedNodes ?? MAX_EXPANDED_NODES;
  const doc = parseDocument(text, { merge: true, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw composeError(source, undefined, `not valid YAML: ${doc.errors[0].message.split('\n')[0]}`, doc.errors[0]);
  }
  try {
    expandedSize(doc.contents as YamlNode | null, limit);
  } catch (e) {
    const reason = (e as Error).message;
    const msg =
      reason === 'excessive aliasing'
        ? `YAML aliases expand to more than ${limit} nodes: refused as an alias bomb (anchors may be reused freely below that size)`
        : `not valid YAML: ${reason}`;
    throw composeError(source, undefined, msg, e);
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: -1 });
  } catch (e) {
    throw composeError(source, undefined, `not valid YAML: ${(e as Error).message}`, e);
  }
  if (data === null || data === undefined) throw composeError(source, undefined, 'the file is empty');
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw composeError(source, undefined, 'a compose file is a mapping (services:, networks:, …) at the top level');
  }
  return data as Record<string, unknown>;
}
