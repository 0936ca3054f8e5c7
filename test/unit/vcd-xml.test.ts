import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VcdXmlError } from '../../lib/vcd/errors.js';
import { attr, child, children, escapeXml, isNil, localValue, NS, nsAttr, parseXml, path as xpath, textOf } from '../../lib/vcd/xml.js';

/** Characters XML 1.0 allows in a document. */
function isXmlText(s: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    const ok = c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || c >= 0x10000;
    if (!ok) return false;
  }
  return true;
}

const fixture = (name: string) => readFileSync(path.join(import.meta.dirname, '../fixtures/vcd', name));

describe('parseXml safety', () => {
  it('rejects a DOCTYPE with an internal entity before parsing', () => {
    expect(() => parseXml(fixture('doctype-entity.xml'))).toThrow(VcdXmlError);
    expect(() => parseXml(fixture('doctype-entity.xml'))).toThrow(/DOCTYPE/);
  });

  it('rejects a billion-laughs document', () => {
    expect(() => parseXml(fixture('billion-laughs.xml'))).toThrow(/DOCTYPE or ENTITY/);
  });

  it('rejects a bare ENTITY declaration and lowercase doctype too', () => {
    expect(() => parseXml('<a><!ENTITY x "y"></a>')).toThrow(VcdXmlError);
    expect(() => parseXml('<!doctype a><a/>')).toThrow(VcdXmlError);
  });

  it('rejects documents over the size limit', () => {
    const big = `<a>${'x'.repeat(2000)}</a>`;
    expect(() => parseXml(big, { maxBytes: 1000 })).toThrow(/over the 1000-byte limit/);
    expect(parseXml(big, { maxBytes: 5000 }).text).toHaveLength(2000);
  });

  it('rejects malformed XML and undeclared prefixes with a typed error', () => {
    expect(() => parseXml('<a><b></a>')).toThrow(VcdXmlError);
    expect(() => parseXml('<x:a/>')).toThrow(/not declared/);
    expect(() => parseXml('')).toThrow(VcdXmlError);
  });
});

describe('parseXml fidelity', () => {
  it('keeps attributes and never coerces numbers', () => {
    const doc = parseXml('<R total="1.0E2" name="00123"><V>0012</V><H>0x1A</H><E>1e3</E><Ver>5.10</Ver></R>');
    expect(attr(doc, 'total')).toBe('1.0E2');
    expect(attr(doc, 'name')).toBe('00123');
    expect(textOf(doc, 'V')).toBe('0012');
    expect(textOf(doc, 'H')).toBe('0x1A');
    expect(textOf(doc, 'E')).toBe('1e3');
    expect(textOf(doc, 'Ver')).toBe('5.10');
  });

  it('decodes entities and numeric character references', () => {
    const doc = parseXml('<R href="https://h/api/query?page=2&amp;pageSize=128"><S>a&#13;b &lt;c&gt; &quot;d&quot; &#x41;</S></R>');
    expect(attr(doc, 'href')).toBe('https://h/api/query?page=2&pageSize=128');
    expect(textOf(doc, 'S')).toBe('a\rb <c> "d" A');
  });

  it('resolves namespaces whatever the prefix', () => {
    const forms = [
      `<VApp xmlns="${NS.vcloud}" xmlns:vmext="${NS.vmext}"><vmext:MoRef>vm-1</vmext:MoRef></VApp>`,
      `<ns0:VApp xmlns:ns0="${NS.vcloud}" xmlns:ns3="${NS.vmext}"><ns3:MoRef>vm-1</ns3:MoRef></ns0:VApp>`,
      `<vcloud:VApp xmlns:vcloud="${NS.vcloud}"><MoRef xmlns="${NS.vmext}">vm-1</MoRef></vcloud:VApp>`,
    ];
    for (const form of forms) {
      const doc = parseXml(form);
      expect(doc.name).toBe('VApp');
      expect(doc.ns).toBe(NS.vcloud);
      const moref = child(doc, 'MoRef', NS.vmext);
      expect(moref?.ns).toBe(NS.vmext);
      expect(textOf(moref)).toBe('vm-1');
    }
  });

  it('resolves prefixed attributes and prefers the unprefixed one on a clash', () => {
    const doc = parseXml(`<a xmlns:ns10="${NS.vcloud}" xmlns:xsi="${NS.xsi}" ns10:href="p" href="u" xsi:type="ns10:MetadataStringValue"/>`);
    expect(attr(doc, 'href')).toBe('u');
    expect(attr(doc, 'href', NS.vcloud)).toBe('p');
    expect(localValue(nsAttr(doc, 'type', NS.xsi))).toBe('MetadataStringValue');
  });

  it('normalises one child and several children to arrays', () => {
    const one = parseXml('<M><E>1</E></M>');
    const many = parseXml('<M><E>1</E><E>2</E></M>');
    expect(children(one, 'E')).toHaveLength(1);
    expect(children(many, 'E').map((e) => textOf(e))).toEqual(['1', '2']);
    expect(children(one, 'Missing')).toEqual([]);
  });

  it('models xsi:nil, empty and blank values as null', () => {
    const doc = parseXml(`<a xmlns:xsi="${NS.xsi}"><n xsi:nil="true"/><e/><b> </b><t>x</t></a>`);
    expect(isNil(child(doc, 'n'))).toBe(true);
    expect(textOf(doc, 'n')).toBeNull();
    expect(textOf(doc, 'e')).toBeNull();
    expect(textOf(doc, 'b')).toBeNull();
    expect(textOf(doc, 'missing')).toBeNull();
    expect(textOf(doc, 't')).toBe('x');
  });

  it('parses the 10.6 fixture vApp with all its VMs', () => {
    const doc = parseXml(fixture('vapp-10.6.xml'));
    expect(children(xpath(doc, 'Children'), 'Vm').map((vm) => attr(vm, 'name'))).toEqual(['db-01', 'app-01', '007']);
  });

  it('round-trips any text through escapeXml', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }).filter(isXmlText), (s) => {
        const doc = parseXml(`<a v="${escapeXml(s)}">${escapeXml(s)}</a>`);
        expect(doc.text).toBe(s);
      }),
      { numRuns: 300 },
    );
  });
});
