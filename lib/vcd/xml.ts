/**
 * Safe, namespace-aware reading of vCD XML documents (references/vcd-api.md §12, "Traps for a parser").
 *
 * - Any document with a DOCTYPE or an ENTITY declaration is rejected before parsing (vCD never sends one;
 *   it is the entity-expansion attack surface).
 * - Documents larger than `maxBytes` are rejected.
 * - Attributes are kept; nothing is coerced to a number (`"0012"` stays `"0012"`); entities and numeric
 *   character references (`&amp;`, `&#13;`) are decoded.
 * - Namespace prefixes are resolved against their `xmlns` declarations, so `vmext:`, `ns3:` and `ns9:` all
 *   become the same `{ ns, name }`. Callers address elements by local name (and optionally namespace URI).
 * - Every element's children are an array, so "one child vs several" never changes the shape.
 */
import { XMLParser } from 'fast-xml-parser';
import { VcdXmlError } from './errors.js';

export const NS = {
  vcloud: 'http://www.vmware.com/vcloud/v1.5',
  ovf: 'http://schemas.dmtf.org/ovf/envelope/1',
  rasd: 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData',
  vssd: 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData',
  vmext: 'http://www.vmware.com/vcloud/extension/v1.5',
  vmw: 'http://www.vmware.com/schema/ovf',
  ovfenv: 'http://schemas.dmtf.org/ovf/environment/1',
  ve: 'http://www.vmware.com/schema/ovfenv',
  common: 'http://schemas.dmtf.org/wbem/wscim/1/common',
  versions: 'http://www.vmware.com/vcloud/versions',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
} as const;

/** Default cap on one document: a vApp with dozens of VMs is a few MB at most. */
export const DEFAULT_MAX_XML_BYTES = 16 * 1024 * 1024;

export interface XmlAttribute {
  /** Local name, prefix removed. */
  readonly name: string;
  /** Namespace URI; null for unprefixed attributes (which belong to no namespace). */
  readonly ns: string | null;
  readonly value: string;
}

export interface XmlNode {
  /** Local name, prefix removed. */
  readonly name: string;
  /** Resolved namespace URI, or null when the element is in no namespace. */
  readonly ns: string | null;
  readonly attributes: readonly XmlAttribute[];
  readonly children: readonly XmlNode[];
  /** The element's own text (text and CDATA children concatenated), untrimmed. */
  readonly text: string;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  removeNSPrefix: false, // we resolve prefixes ourselves, against their declarations
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
  htmlEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: false,
});

const FORBIDDEN = /<!\s*(DOCTYPE|ENTITY)/i;

/** Parses one vCD XML document; throws VcdXmlError for DOCTYPEs, oversize or malformed input. */
export function parseXml(input: string | Buffer, options: { maxBytes?: number } = {}): XmlNode {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_XML_BYTES;
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.length;
  if (size > maxBytes) {
    throw new VcdXmlError(`XML document is ${size} bytes, over the ${maxBytes}-byte limit`);
  }
  const text = typeof input === 'string' ? input : input.toString('utf8');
  if (FORBIDDEN.test(text)) {
    throw new VcdXmlError('XML document contains a DOCTYPE or ENTITY declaration; vCD never sends one, so it is rejected');
  }
  let raw: unknown;
  try {
    raw = parser.parse(text, true);
  } catch (err) {
    throw new VcdXmlError(`malformed XML: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (!Array.isArray(raw)) throw new VcdXmlError('malformed XML: no root element');
  const roots = raw
    .filter((entry): entry is Record<string, unknown> => typeof entry === 'object' && entry !== null)
    .filter((entry) => elementName(entry) !== undefined);
  const root = roots[0];
  if (root === undefined || roots.length !== 1) throw new VcdXmlError('malformed XML: expected exactly one root element');
  return build(root, new Map([['xml', 'http://www.w3.org/XML/1998/namespace']]));
}

function elementName(entry: Record<string, unknown>): string | undefined {
  return Object.keys(entry).find((k) => k !== ':@' && k !== '#text');
}

function build(entry: Record<string, unknown>, inherited: ReadonlyMap<string, string>): XmlNode {
  const qname = elementName(entry) ?? '';
  const rawAttrs = (entry[':@'] ?? {}) as Record<string, string>;
  let scope = inherited;
  for (const [key, value] of Object.entries(rawAttrs)) {
    if (key === 'xmlns' || key.startsWith('xmlns:')) {
      if (scope === inherited) scope = new Map(inherited);
      (scope as Map<string, string>).set(key === 'xmlns' ? '' : key.slice(6), String(value));
    }
  }
  const [prefix, local] = splitQName(qname);
  const ns = scope.get(prefix) ?? (prefix === '' ? null : null);
  if (prefix !== '' && !scope.has(prefix)) {
    throw new VcdXmlError(`malformed XML: prefix "${prefix}" of <${qname}> is not declared`);
  }
  const attributes: XmlAttribute[] = [];
  for (const [key, value] of Object.entries(rawAttrs)) {
    if (key === 'xmlns' || key.startsWith('xmlns:')) continue;
    const [aPrefix, aLocal] = splitQName(key);
    if (aPrefix !== '' && !scope.has(aPrefix)) {
      throw new VcdXmlError(`malformed XML: prefix "${aPrefix}" of attribute ${key} is not declared`);
    }
    attributes.push({ name: aLocal, ns: aPrefix === '' ? null : (scope.get(aPrefix) ?? null), value: String(value) });
  }
  const children: XmlNode[] = [];
  let text = '';
  const body = entry[qname];
  if (Array.isArray(body)) {
    for (const child of body as Array<Record<string, unknown>>) {
      if (typeof child !== 'object' || child === null) continue;
      if ('#text' in child && elementName(child) === undefined) {
        text += String(child['#text']);
        continue;
      }
      children.push(build(child, scope));
    }
  }
  return { name: local, ns, attributes, children, text };
}

function splitQName(qname: string): [string, string] {
  const i = qname.indexOf(':');
  return i < 0 ? ['', qname] : [qname.slice(0, i), qname.slice(i + 1)];
}

// ---- navigation helpers -------------------------------------------------------------------------------

/** All direct children with this local name (and namespace, when given). Always an array. */
export function children(node: XmlNode | undefined, name: string, ns?: string): XmlNode[] {
  if (node === undefined) return [];
  return node.children.filter((c) => c.name === name && (ns === undefined || c.ns === ns));
}

/** The first direct child with this local name, or undefined. */
export function child(node: XmlNode | undefined, name: string, ns?: string): XmlNode | undefined {
  if (node === undefined) return undefined;
  return node.children.find((c) => c.name === name && (ns === undefined || c.ns === ns));
}

/** Follows a path of local names, first match at each step. */
export function path(node: XmlNode | undefined, ...names: string[]): XmlNode | undefined {
  let current = node;
  for (const name of names) current = child(current, name);
  return current;
}

/** All descendants (depth first) with this local name. */
export function descendants(node: XmlNode | undefined, name: string): XmlNode[] {
  const out: XmlNode[] = [];
  const walk = (n: XmlNode) => {
    for (const c of n.children) {
      if (c.name === name) out.push(c);
      walk(c);
    }
  };
  if (node !== undefined) walk(node);
  return out;
}

/**
 * An attribute by local name. When several attributes share the local name (`href` and `ns10:href`), the
 * unprefixed one wins, then the one in `preferNs`.
 */
export function attr(node: XmlNode | undefined, name: string, preferNs?: string): string | undefined {
  if (node === undefined) return undefined;
  const matches = node.attributes.filter((a) => a.name === name);
  if (matches.length === 0) return undefined;
  if (preferNs !== undefined) {
    const preferred = matches.find((a) => a.ns === preferNs);
    if (preferred) return preferred.value;
  }
  return (matches.find((a) => a.ns === null) ?? matches[0])?.value;
}

/** An attribute in a given namespace only (`xsi:type`, `xsi:nil`). */
export function nsAttr(node: XmlNode | undefined, name: string, ns: string): string | undefined {
  return node?.attributes.find((a) => a.name === name && a.ns === ns)?.value;
}

/** True for `xsi:nil="true"` elements. */
export function isNil(node: XmlNode | undefined): boolean {
  const nil = nsAttr(node, 'nil', NS.xsi) ?? attr(node, 'nil');
  return nil === 'true' || nil === '1';
}

/** Trimmed text of a child; null when the child is absent, nil, or blank (vCD writes " " for "empty"). */
export function textOf(node: XmlNode | undefined, name?: string): string | null {
  const target = name === undefined ? node : child(node, name);
  if (target === undefined || isNil(target)) return null;
  const value = target.text.trim();
  return value === '' ? null : value;
}

/** Untrimmed text (metadata values, descriptions keep their whitespace); null when absent or nil. */
export function rawTextOf(node: XmlNode | undefined, name?: string): string | null {
  const target = name === undefined ? node : child(node, name);
  if (target === undefined || isNil(target)) return null;
  return target.text;
}

/** A QName attribute value (`vcloud:MetadataStringValue`) without its prefix. */
export function localValue(value: string | undefined | null): string | null {
  if (value === undefined || value === null) return null;
  const i = value.lastIndexOf(':');
  return i < 0 ? value : value.slice(i + 1);
}

/** Blank attribute values (" ") become null. */
export function blankToNull(value: string | undefined | null): string | null {
  if (value === undefined || value === null) return null;
  return value.trim() === '' ? null : value;
}

/** Strict integer from text; null when absent; VcdXmlError when present but not an integer. */
export function intOf(value: string | null | undefined, what: string): number | null {
  if (value === null || value === undefined || value.trim() === '') return null;
  const v = value.trim();
  if (!/^-?\d+$/.test(v)) throw new VcdXmlError(`${what}: expected an integer, got "${v}"`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new VcdXmlError(`${what}: integer ${v} is too large`);
  return n;
}

/** Strict boolean from "true"/"false" (and "1"/"0"); null when absent. */
export function boolOf(value: string | null | undefined, what: string): boolean | null {
  if (value === null || value === undefined || value.trim() === '') return null;
  const v = value.trim();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new VcdXmlError(`${what}: expected true or false, got "${v}"`);
}

/** Minimal XML escaping for text and attribute values when writing documents. */
export function escapeXml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\r/g, '&#13;');
}
