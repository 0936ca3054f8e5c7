/**
 * PropertyCollector reads: `RetrievePropertiesEx` and, while the answer carries a token,
 * `ContinueRetrievePropertiesEx`, so large inventories come back in pages rather than one huge document.
 */
import { children, textOf, type XmlNode } from '../vcd/xml.js';
import { faultToError, VsphereXmlError } from './errors.js';
import { el, moRef, moRefOf, faultType, raw, type ManagedObjectReference, type SoapClient } from './soap.js';

/** govmomi `types.ObjectContent`, values kept as XML for the caller's typed readers. */
export interface ObjectContent {
  readonly obj: ManagedObjectReference;
  /** Property path → its `<val>` element. Absent when the property is unset. */
  readonly propSet: ReadonlyMap<string, XmlNode>;
}

/** One `PropertySpec` and the objects (or a traversal) it applies to. */
export interface RetrieveSpec {
  readonly type: string;
  readonly pathSet: readonly string[];
  readonly objects: ReadonlyArray<{ readonly obj: ManagedObjectReference; readonly skip?: boolean; readonly selectSet?: string }>;
}

export function propertyFilterSpec(spec: RetrieveSpec): string {
  const propSet = raw('propSet', el('type', spec.type) + spec.pathSet.map((p) => el('pathSet', p)).join(''));
  const objectSet = spec.objects
    .map((o) => raw('objectSet', moRef('obj', o.obj) + (o.skip === undefined ? '' : el('skip', o.skip)) + (o.selectSet ?? '')))
    .join('');
  return raw('specSet', propSet + objectSet);
}

export async function retrievePropertiesEx(client: SoapClient, collector: ManagedObjectReference, spec: RetrieveSpec, maxObjects = 500): Promise<ObjectContent[]> {
  const out: ObjectContent[] = [];
  let response = await client.call('RetrievePropertiesEx', collector, propertyFilterSpec(spec) + raw('options', el('maxObjects', maxObjects)));
  for (;;) {
    const result = children(response, 'returnval')[0];
    if (result === undefined) return out; // nothing matched: vSphere sends an empty response
    for (const objects of children(result, 'objects')) out.push(objectContent(objects));
    const token = textOf(result, 'token');
    if (token === null) return out;
    response = await client.call('ContinueRetrievePropertiesEx', collector, el('token', token));
  }
}

function objectContent(node: XmlNode): ObjectContent {
  const obj = moRefOf(children(node, 'obj')[0], 'ObjectContent.obj');
  const propSet = new Map<string, XmlNode>();
  for (const prop of children(node, 'propSet')) {
    const name = textOf(prop, 'name');
    const val = children(prop, 'val')[0];
    if (name === null || val === undefined) throw new VsphereXmlError(`ObjectContent of ${obj.value}: a propSet without name or val`);
    propSet.set(name, val);
  }
  for (const missing of children(node, 'missingSet')) {
    // A property vSphere could not read for this object (permission, or the object vanished): a fault.
    const fault = children(missing, 'fault')[0];
    const detail = children(fault, 'fault')[0];
    if (detail !== undefined) {
      throw faultToError(faultType(detail), textOf(fault, 'localizedMessage') ?? `cannot read ${textOf(missing, 'path') ?? 'a property'} of ${obj.value}`, {
        moref: obj.value,
        privilegeId: textOf(detail, 'privilegeId'),
      });
    }
  }
  return { obj, propSet };
}

/** The properties of one object; a missing object is a ManagedObjectNotFoundError. */
export async function retrieveObject(client: SoapClient, collector: ManagedObjectReference, obj: ManagedObjectReference, pathSet: readonly string[]): Promise<ReadonlyMap<string, XmlNode>> {
  const [content] = await retrievePropertiesEx(client, collector, { type: obj.type, pathSet, objects: [{ obj }] });
  if (content === undefined) throw faultToError('ManagedObjectNotFound', `${obj.type} ${obj.value} was not returned`, { moref: obj.value });
  return content.propSet;
}
