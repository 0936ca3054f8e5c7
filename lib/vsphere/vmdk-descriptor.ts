/**
 * VMDK descriptor files (`# Disk DescriptorFile`): which extents hold the data. The https transport can read
 * only flat extents of a disk without a parent; everything else is refused with the transports that can.
 */
import { UnsupportedDiskError, VsphereXmlError } from './errors.js';

export type ExtentType = 'FLAT' | 'VMFS' | 'ZERO' | 'SPARSE' | 'VMFSSPARSE' | 'SESPARSE' | 'VMFSRDM' | 'VMFSRAW' | 'VSANSPARSE';

export interface VmdkExtent {
  readonly access: 'RW' | 'RDONLY' | 'NOACCESS';
  readonly sizeInSectors: number;
  readonly type: ExtentType;
  /** Relative to the descriptor's directory; null for ZERO extents. */
  readonly fileName: string | null;
  /** Byte offset in the extent file. */
  readonly offset: number;
}

export interface VmdkDescriptor {
  readonly createType: string;
  readonly parentCID: string | null;
  readonly extents: readonly VmdkExtent[];
}

export const SECTOR = 512;
const OTHER_TRANSPORTS = 'use the nbd transport (nbdkit with VDDK) or hotadd';
const MAX_DESCRIPTOR = 64 * 1024;

/** Parses a descriptor; refuses binary (sparse) headers, DOCTYPE-like junk and oversize text. */
export function parseVmdkDescriptor(data: Buffer, file: string): VmdkDescriptor {
  const magic = data.subarray(0, 4).toString('latin1');
  if (magic === 'KDMV') throw new UnsupportedDiskError(`${file} is a hosted sparse VMDK (monolithicSparse/streamOptimized), which https range reads cannot read: ${OTHER_TRANSPORTS}`);
  if (magic === 'COWD') throw new UnsupportedDiskError(`${file} is a VMFS sparse (delta) disk: ${OTHER_TRANSPORTS}`);
  if (data.length > MAX_DESCRIPTOR) throw new UnsupportedDiskError(`${file} is not a VMDK descriptor (larger than ${MAX_DESCRIPTOR} bytes): ${OTHER_TRANSPORTS}`);
  const text = data.toString('utf8');
  if (!/^#\s*Disk DescriptorFile/m.test(text)) throw new VsphereXmlError(`${file} is not a VMDK descriptor (no "# Disk DescriptorFile" line)`);
  let createType = '';
  let parentCID: string | null = null;
  const extents: VmdkExtent[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const kv = /^([A-Za-z][\w.]*)\s*=\s*"?([^"]*)"?$/.exec(line);
    if (kv !== null) {
      if (kv[1] === 'createType') createType = kv[2] ?? '';
      if (kv[1] === 'parentCID') parentCID = (kv[2] ?? '').toLowerCase() === 'ffffffff' ? null : (kv[2] ?? null);
      continue;
    }
    const ext = /^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Z]+)(?:\s+"([^"]+)"(?:\s+(\d+))?)?/.exec(line);
    if (ext !== null) {
      const sizeInSectors = Number(ext[2]);
      if (!Number.isSafeInteger(sizeInSectors)) throw new VsphereXmlError(`${file}: extent size ${ext[2]} is too large`);
      extents.push({
        access: ext[1] as VmdkExtent['access'],
        sizeInSectors,
        type: ext[3] as ExtentType,
        fileName: ext[4] ?? null,
        offset: Number(ext[5] ?? '0') * SECTOR,
      });
    }
  }
  if (extents.length === 0) throw new VsphereXmlError(`${file}: the descriptor lists no extent`);
  return { createType, parentCID, extents };
}

/** Throws unless every extent is flat (or zero) and the disk has no parent: what https range reads can serve. */
export function assertFlat(descriptor: VmdkDescriptor, file: string): void {
  const type = descriptor.createType.toLowerCase();
  if (type.includes('vsan') || descriptor.extents.some((e) => e.type === 'VSANSPARSE' || (e.fileName ?? '').startsWith('vsan:'))) {
    throw new UnsupportedDiskError(`${file} is on vSAN, whose objects are not files the datastore browser serves: ${OTHER_TRANSPORTS}`);
  }
  if (type.includes('sesparse') || descriptor.extents.some((e) => e.type === 'SESPARSE')) {
    throw new UnsupportedDiskError(`${file} is a seSparse disk: ${OTHER_TRANSPORTS}`);
  }
  if (descriptor.parentCID !== null) {
    throw new UnsupportedDiskError(`${file} is a delta disk with a parent (an older snapshot chain): https reads see only the delta; ${OTHER_TRANSPORTS}, or consolidate the VM's snapshots`);
  }
  for (const e of descriptor.extents) {
    if (e.type !== 'FLAT' && e.type !== 'VMFS' && e.type !== 'ZERO') {
      throw new UnsupportedDiskError(`${file} has a ${e.type} extent (createType ${descriptor.createType}), which https range reads cannot read: ${OTHER_TRANSPORTS}`);
    }
  }
}
