/**
 * The AWS Query protocol as EC2 and Auto Scaling speak it: a urlencoded form (`Action`, `Version`, members as
 * `Name.1` (EC2) or `Name.member.1` (Auto Scaling)), answered in XML. Shared by the lab's EC2 and Auto Scaling
 * stand-ins so the real AWS CLI and SDK clients parse what the lab returns.
 */

/** A Query-protocol error: EC2 and Auto Scaling render it differently (see `renderEc2Error`, `renderAsgError`). */
export class QueryError extends Error {
  constructor(
    public readonly code: string,
    message: string,
    public readonly statusCode = 400,
  ) {
    super(message);
  }
}

export type QueryParams = ReadonlyMap<string, string>;

export function parseQuery(body: string): QueryParams {
  return new Map(new URLSearchParams(body));
}

/** `Prefix.1`, `Prefix.2`, … (EC2) — or `Prefix.member.1`, … (Auto Scaling) when `member` is true. */
export function listParam(q: QueryParams, prefix: string, member = false): string[] {
  const out: string[] = [];
  for (let i = 1; ; i++) {
    const v = q.get(member ? `${prefix}.member.${i}` : `${prefix}.${i}`);
    if (v === undefined) return out;
    out.push(v);
  }
}

/** `Filter.N.Name` + `Filter.N.Value.M` (EC2) or `Filters.member.N.Name` + `.Values.member.M` (Auto Scaling). */
export function filterParams(q: QueryParams, style: 'ec2' | 'asg'): { name: string; values: string[] }[] {
  const out: { name: string; values: string[] }[] = [];
  for (let i = 1; ; i++) {
    const base = style === 'ec2' ? `Filter.${i}` : `Filters.member.${i}`;
    const name = q.get(`${base}.Name`);
    if (name === undefined) return out;
    out.push({ name, values: style === 'ec2' ? listParam(q, `${base}.Value`) : listParam(q, `${base}.Values`, true) });
  }
}

export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** A tiny XML writer: `el('a', el('b', 'x'))` → `<a><b>x</b></a>`; strings given as text are escaped by `text`. */
export type Xml = { readonly xml: string };
export const text = (s: string | number | boolean): Xml => ({ xml: xmlEscape(String(s)) });
export function el(name: string, ...children: (Xml | undefined)[]): Xml {
  const inner = children.filter((c): c is Xml => c !== undefined).map((c) => c.xml).join('');
  return { xml: inner === '' ? `<${name}/>` : `<${name}>${inner}</${name}>` };
}
/** `<name>value</name>`, or nothing when value is undefined. */
export function leaf(name: string, value: string | number | boolean | undefined): Xml | undefined {
  return value === undefined ? undefined : el(name, text(value));
}

export function document(root: string, namespace: string, ...children: (Xml | undefined)[]): string {
  const body = el(root, ...children).xml.replace(`<${root}>`, `<${root} xmlns="${namespace}">`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
}

/** EC2's error document: `<Response><Errors><Error><Code>…`. */
export function renderEc2Error(e: QueryError, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${
    el('Response', el('Errors', el('Error', leaf('Code', e.code), leaf('Message', e.message))), leaf('RequestID', requestId)).xml
  }`;
}

/** Auto Scaling's (awsquery) error document: `<ErrorResponse><Error><Type>Sender</Type><Code>…`. */
export function renderAsgError(e: QueryError, requestId: string, namespace: string): string {
  return document('ErrorResponse', namespace, el('Error', leaf('Type', e.statusCode >= 500 ? 'Receiver' : 'Sender'), leaf('Code', e.code), leaf('Message', e.message)), leaf('RequestId', requestId));
}

/** ISO 8601 without milliseconds, as the services print times. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, '.000Z');
}
