import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findSensitive, mapMetadata, mapVApp, redactXml, uuidOf } from '../../lib/vcd/capture-mapping.js';
import { VcdXmlError } from '../../lib/vcd/errors.js';
import { vappModelSchema } from '../../lib/vcd/model.js';
import { parseXml } from '../../lib/vcd/xml.js';

const dir = path.join(import.meta.dirname, '../fixtures/vcd');
const text = (name: string) => readFileSync(path.join(dir, name), 'utf8');
const doc = (name: string) => parseXml(text(name));
const json = (name: string): unknown => JSON.parse(text(name));

describe('mapVApp on a 10.6 response', () => {
  const model = mapVApp({
    vapp: doc('vapp-10.6.xml'),
    metadata: doc('vapp-10.6-metadata.xml'),
    vmMetadata: {
      'urn:vcloud:vm:aa11bb22-cc33-4d44-8e55-ff6677889900': doc('vm-db-01-metadata-ns6.xml'),
      'vm-bb22cc33-dd44-4e55-9f66-001122334455': doc('vm-app-01-metadata-empty.xml'),
    },
  });

  it('equals the reviewed expected model', () => {
    expect(model).toEqual(json('vapp-10.6.expected.json'));
    expect(vappModelSchema.parse(model)).toEqual(model);
  });

  it('captures the three network kinds with their parent org networks', () => {
    expect(model.networks.map((n) => [n.name, n.fenceMode, n.parentNetwork])).toEqual([
      ['app-routed', 'natRouted', 'acme-routed-ext'],
      ['acme-direct', 'bridged', 'acme-direct'],
      ['backend-isolated', 'isolated', null],
    ]);
    expect(model.networks[0]?.ipScopes[0]?.dns2).toBeNull(); // vCD's " " means empty
  });

  it('keeps all four metadata types, with JSON numbers and booleans, and string fidelity', () => {
    expect(model.metadata.map((m) => [m.key, m.type, m.value, m.domain, m.visibility])).toEqual([
      ['cost-center', 'string', '0012', 'GENERAL', 'READWRITE'],
      ['notes', 'string', '  padded & "quoted" <ok>  ', 'GENERAL', 'READWRITE'],
      ['replicas', 'number', 3, 'GENERAL', 'READWRITE'],
      ['backup.enabled', 'boolean', true, 'SYSTEM', 'READONLY'],
      ['billing.since', 'dateTime', '2025-05-01T00:00:00.000-04:00', 'SYSTEM', 'PRIVATE'],
      ['no-domain', 'number', -1500, 'GENERAL', 'READWRITE'],
    ]);
  });

  it('orders NICs by index whatever the document order, and marks the primary one', () => {
    const db = model.vms[0];
    expect(db?.nics.map((n) => [n.index, n.network, n.primary])).toEqual([
      [0, 'app-routed', true],
      [1, 'backend-isolated', false],
    ]);
  });

  it('takes disk size, bus and storage policy from the hardware section and VmSpecSection', () => {
    expect(model.vms[0]?.disks[1]).toEqual({
      instanceId: 2016,
      sizeBytes: 214748364800,
      busType: 6,
      busSubType: 'lsilogicsas',
      busNumber: 1,
      unitNumber: 0,
      storageProfile: 'Platinum-NVMe',
    });
  });

  it('gives null for what a tenant-view VM does not carry, never a guess', () => {
    const vm = model.vms[2];
    expect(vm?.name).toBe('007');
    expect(vm?.moref).toBeNull();
    expect(vm?.vcenter).toBeNull();
    expect(vm?.storageProfile).toBeNull();
    expect(vm?.guestCustomization).toBeNull();
    expect(vm?.cpu.coresPerSocket).toBeNull();
    expect(vm?.nics[0]?.primary).toBeNull();
  });

  it('never copies a password into the model', () => {
    const serialised = JSON.stringify(model);
    expect(serialised).not.toContain('S3cr3t');
    expect(serialised).not.toContain('J0in');
    expect(model.vms[0]?.guestCustomization?.adminPasswordSet).toBe(true);
  });

  it('uses the org from the caller, since the vApp document does not name it', () => {
    const withOrg = mapVApp({ vapp: doc('vapp-10.6.xml') }, { org: { id: 'urn:vcloud:org:1', name: 'acme' } });
    expect(withOrg.org).toEqual({ id: 'urn:vcloud:org:1', name: 'acme' });
    expect(withOrg.metadata).toEqual([]);
  });
});

describe('mapVApp on old 1.5/5.x documents', () => {
  it('handles ns2..ns6 prefixes, IpScope under Configuration, unprefixed HostResource and 1.5 metadata', () => {
    const model = mapVApp({ vapp: doc('vapp-5x.xml'), metadata: doc('vapp-metadata-1.5.xml') });
    expect(model).toEqual(json('vapp-5x.expected.json'));
    expect(model.id).toBe('urn:vcloud:vapp:0d8c4a2e-7f31-4b9a-a6e2-3c5d7f9b1e24'); // from href
    expect(model.vms[0]?.moref).toBe('vm-595');
    expect(model.vms[1]?.moref).toBe('vm-139'); // from ovfenv:Environment ve:vCenterId
    expect(model.vms[1]?.memoryMiB).toBe(1024); // byte * 2^30
    expect(model.metadata[1]).toEqual({ key: 'build', value: '1e3', type: 'string', domain: 'GENERAL', visibility: 'READWRITE' });
  });

  it('maps a vApp with empty sections and nil values', () => {
    const model = mapVApp({ vapp: doc('vapp-empty-sections.xml') });
    expect(model).toMatchObject({ name: 'empty-shell', description: null, deployed: null, startup: [], networks: [], vms: [] });
    expect(model.lease).toEqual({ deploymentLeaseSeconds: null, storageLeaseSeconds: null });
  });
});

describe('mapping errors', () => {
  it('rejects a non-VApp document', () => {
    expect(() => mapVApp({ vapp: doc('vapp-10.6-metadata.xml') })).toThrow(/expected a VApp/);
  });

  it('names the field when a value is malformed', () => {
    const bad = text('vapp-10.6.xml').replace('<StorageLeaseInSeconds>2592000<', '<StorageLeaseInSeconds>soon<');
    expect(() => mapVApp({ vapp: parseXml(bad) })).toThrow(/StorageLeaseInSeconds: expected an integer, got "soon"/);
  });

  it('rejects unknown metadata types and bad numbers', () => {
    const meta = (type: string, value: string) =>
      parseXml(
        `<Metadata xmlns="http://www.vmware.com/vcloud/v1.5" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><MetadataEntry><Key>k</Key><TypedValue xsi:type="${type}"><Value>${value}</Value></TypedValue></MetadataEntry></Metadata>`,
      );
    expect(() => mapMetadata(meta('MetadataBlobValue', 'x'))).toThrow(VcdXmlError);
    expect(() => mapMetadata(meta('MetadataNumberValue', '12abc'))).toThrow(/not a number/);
    expect(() => mapMetadata(meta('MetadataBooleanValue', 'yes'))).toThrow(/true or false/);
    expect(mapMetadata(meta('vcloud:MetadataNumberValue', '0012'))[0]?.value).toBe(12);
  });
});

describe('secrets', () => {
  it('finds guest-customization and ovfenv passwords', () => {
    expect(findSensitive(doc('vapp-10.6.xml'))).toEqual([
      'vm "db-01" GuestCustomizationSection/AdminPassword',
      'vm "app-01" GuestCustomizationSection/DomainUserPassword',
    ]);
    expect(findSensitive(doc('vapp-5x.xml'))).toEqual(['vm "web-b" property vCloud_adminPassword']);
  });

  it('redacts them from raw XML without breaking it', () => {
    const redacted = redactXml(text('vapp-10.6.xml'));
    expect(redacted).not.toContain('S3cr3t-db-R00t!');
    expect(redacted).not.toContain('J0in-Th3-D0main');
    expect(redacted).toContain('<AdminPassword>***</AdminPassword>');
    const legacy = redactXml(text('vapp-5x.xml'));
    expect(legacy).not.toContain('cleartext-Pa55');
    expect(legacy).toContain('ovfenv:value="web-b"');
    // still parses and maps to the same model
    expect(mapVApp({ vapp: parseXml(redacted) })).toEqual(mapVApp({ vapp: doc('vapp-10.6.xml') }));
  });
});

describe('uuidOf', () => {
  it('reads uuids from URNs, hrefs and short ids', () => {
    const u = 'aa11bb22-cc33-4d44-8e55-ff6677889900';
    expect(uuidOf(`urn:vcloud:vm:${u}`)).toBe(u);
    expect(uuidOf(`https://h/api/vApp/vm-${u}`)).toBe(u);
    expect(uuidOf(`vm-${u.toUpperCase()}`)).toBe(u);
    expect(uuidOf('nope')).toBeNull();
  });
});
