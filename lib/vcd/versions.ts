/**
 * API version negotiation (references/vcd-api.md §1). Versions stay strings ("5.10" is not "5.1") and are
 * compared numerically by (major, minor). The client speaks API 37.x (vCD 10.4) to 39.x (vCD 10.6).
 */
import { BackupError } from '../errors.js';
import { attr, children, textOf, type XmlNode } from './xml.js';

export const MIN_API_VERSION = '37.0';
export const MAX_API_MAJOR = 39;

export interface ApiVersionInfo {
  readonly version: string;
  readonly deprecated: boolean;
}

export class UnsupportedVersionError extends BackupError {
  constructor(message: string) {
    super('VCD_VERSION_UNSUPPORTED', message, { userFacing: true });
  }
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((p) => Number.parseInt(p, 10));
  const pb = b.split('.').map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Reads `SupportedVersions/VersionInfo` (unsorted, any namespace prefix). */
export function parseSupportedVersions(doc: XmlNode): ApiVersionInfo[] {
  if (doc.name !== 'SupportedVersions') throw new BackupError('VCD_BAD_XML', `expected SupportedVersions from /api/versions, got <${doc.name}>`);
  return children(doc, 'VersionInfo')
    .map((info) => ({ version: textOf(info, 'Version') ?? '', deprecated: attr(info, 'deprecated') === 'true' }))
    .filter((v) => /^\d+\.\d+$/.test(v.version));
}

/**
 * The highest non-deprecated version the server offers within 37.0–39.x (or exactly `preferred`, when the
 * server offers it). Deprecated versions are used only when nothing else fits.
 */
export function negotiateVersion(offered: readonly ApiVersionInfo[], preferred?: string): string {
  if (preferred !== undefined) {
    if (offered.some((v) => v.version === preferred)) return preferred;
    throw new UnsupportedVersionError(
      `vCD does not offer API version ${preferred}; it offers ${offered.map((v) => v.version).sort(compareVersions).join(', ')}`,
    );
  }
  const inRange = offered.filter(
    (v) => compareVersions(v.version, MIN_API_VERSION) >= 0 && Number.parseInt(v.version, 10) <= MAX_API_MAJOR,
  );
  const pick = (list: readonly ApiVersionInfo[]) => [...list].sort((a, b) => compareVersions(b.version, a.version))[0]?.version;
  const chosen = pick(inRange.filter((v) => !v.deprecated)) ?? pick(inRange);
  if (chosen === undefined) {
    const highest = pick(offered);
    throw new UnsupportedVersionError(
      highest !== undefined && compareVersions(highest, MIN_API_VERSION) < 0
        ? `this vCD offers API versions up to ${highest}; vcd-backup needs VMware Cloud Director 10.4 or later (API ${MIN_API_VERSION}–${MAX_API_MAJOR}.x)`
        : `this vCD offers no API version between ${MIN_API_VERSION} and ${MAX_API_MAJOR}.x (offered: ${offered.map((v) => v.version).join(', ') || 'none'})`,
    );
  }
  return chosen;
}
