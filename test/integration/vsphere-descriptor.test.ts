import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { HttpsDiskSource, parseVmdkDescriptor, assertFlat, UnsupportedDiskError, VsphereSession } from '../../lib/vsphere/index.js';
import { startVcsim, type Vcsim } from '../helpers/vcsim.js';

let sim: Vcsim;
let session: VsphereSession;

beforeAll(async () => {
  sim = await startVcsim({ diskMiB: 1 });
  session = await VsphereSession.login({ url: sim.url, userName: sim.userName, password: sim.password });
});

afterAll(async () => {
  await session?.logout();
  await sim?.stop();
});

const descriptor = (createType: string, extent: string, parentCID = 'ffffffff') =>
  Buffer.from(`# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=${parentCID}\ncreateType="${createType}"\n\n# Extent description\n${extent}\n`);

describe('VMDK descriptors on the https transport', () => {
  it('parses flat extents with sizes in sectors and offsets', () => {
    const d = parseVmdkDescriptor(descriptor('vmfs', 'RW 2097152 VMFS "vm-flat.vmdk"'), '[ds] vm/vm.vmdk');
    expect(d.extents).toEqual([{ access: 'RW', sizeInSectors: 2097152, type: 'VMFS', fileName: 'vm-flat.vmdk', offset: 0 }]);
    expect(() => assertFlat(d, 'x')).not.toThrow();
  });

  it.each([
    ['seSparse', descriptor('seSparse', 'RW 2048 SESPARSE "vm-sesparse.vmdk"')],
    ['vSAN', descriptor('vsanSparse', 'RW 2048 VSANSPARSE "vsan://52ab/x"')],
    ['a delta with a parent', descriptor('vmfsSparse', 'RW 2048 VMFSSPARSE "vm-000001-delta.vmdk"', 'abcdef01')],
    ['hosted sparse', Buffer.concat([Buffer.from('KDMV'), Buffer.alloc(508)])],
  ])('refuses %s, naming the nbd and hotadd transports', async (_what, content) => {
    const file = sim.localPath('[LocalDS_0] refused.vmdk');
    await writeFile(file, content);
    const err = await HttpsDiskSource.openFile(session, sim.datacenter, '[LocalDS_0] refused.vmdk').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedDiskError);
    expect((err as Error).message).toMatch(/nbd.*hotadd/);
  });

  it('reads a two-extent flat disk with a ZERO extent through range requests', async () => {
    await writeFile(sim.localPath('[LocalDS_0] two-flat.vmdk'), Buffer.alloc(1024, 5));
    await writeFile(sim.localPath('[LocalDS_0] two.vmdk'), descriptor('twoGbMaxExtentFlat', 'RW 1 FLAT "two-flat.vmdk" 1\nRW 2 ZERO'));
    const source = await HttpsDiskSource.openFile(session, sim.datacenter, '[LocalDS_0] two.vmdk');
    expect(source.size).toBe(1536);
    const into = Buffer.alloc(1536, 0xff);
    expect(await source.read(0, 1536, into)).toBe(1536);
    expect(into.subarray(0, 512).every((b) => b === 5)).toBe(true);
    expect(into.subarray(512).every((b) => b === 0)).toBe(true);
  });
});
