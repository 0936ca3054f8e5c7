import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mapError, parseErrorBody } from '../../lib/vcd/api-errors.js';
import { VcdApiError, VcdAuthError, VcdBusyError, VcdNotFoundError } from '../../lib/vcd/errors.js';
import { compareVersions, negotiateVersion, parseSupportedVersions, UnsupportedVersionError } from '../../lib/vcd/versions.js';
import { parseXml } from '../../lib/vcd/xml.js';

describe('API versions', () => {
  it('compares as (major, minor) numbers and keeps strings', () => {
    expect(compareVersions('5.10', '5.9')).toBeGreaterThan(0);
    expect(compareVersions('39.0', '38.1')).toBeGreaterThan(0);
    expect(compareVersions('37.0', '37.0')).toBe(0);
  });

  it('reads an unsorted SupportedVersions document with any prefix', () => {
    const doc = parseXml(
      '<ns9:SupportedVersions xmlns:ns9="http://www.vmware.com/vcloud/versions"><ns9:VersionInfo deprecated="false"><ns9:Version>37.2</ns9:Version></ns9:VersionInfo>' +
        '<ns9:VersionInfo deprecated="true"><ns9:Version>39.1</ns9:Version></ns9:VersionInfo><ns9:VersionInfo deprecated="false"><ns9:Version>5.10</ns9:Version></ns9:VersionInfo></ns9:SupportedVersions>',
    );
    const offered = parseSupportedVersions(doc);
    expect(offered.map((v) => v.version)).toEqual(['37.2', '39.1', '5.10']);
    expect(negotiateVersion(offered)).toBe('37.2'); // deprecated 39.1 only as a last resort
    expect(negotiateVersion([{ version: '39.1', deprecated: true }])).toBe('39.1');
    expect(negotiateVersion([{ version: '38.1', deprecated: false }, { version: '40.0', deprecated: false }])).toBe('38.1');
    expect(() => negotiateVersion([{ version: '36.2', deprecated: false }])).toThrow(UnsupportedVersionError);
  });
});

describe('vCD error answers', () => {
  const forbidden = readFileSync(path.join(import.meta.dirname, '../fixtures/vcd/error-forbidden.xml'));

  it('reads the Error document whatever its prefix, truncating the message', () => {
    expect(parseErrorBody('application/vnd.vmware.vcloud.error+xml', forbidden)).toMatchObject({
      majorErrorCode: '403',
      minorErrorCode: 'ACCESS_TO_RESOURCE_IS_FORBIDDEN',
      message: expect.stringContaining('No access to entity "(com.vmware.vcloud.entity.vapp:'),
    });
    expect(parseErrorBody('application/json', Buffer.from('{"minorErrorCode":"BAD_REQUEST","message":"nope"}'))).toMatchObject({ minorErrorCode: 'BAD_REQUEST', message: 'nope' });
    expect(parseErrorBody(undefined, Buffer.alloc(0))).toEqual({ majorErrorCode: null, minorErrorCode: null, message: null });
  });

  it('maps statuses to typed errors', () => {
    expect(mapError(403, undefined, forbidden, 'GET', '/api/vApp/vapp-x')).toBeInstanceOf(VcdNotFoundError);
    expect(mapError(403, undefined, Buffer.from('<Error majorErrorCode="403" minorErrorCode="OTHER" message="m"/>'), 'GET', '/p')).not.toBeInstanceOf(VcdNotFoundError);
    expect(mapError(404, undefined, Buffer.alloc(0), 'GET', '/p')).toBeInstanceOf(VcdNotFoundError);
    expect(mapError(409, undefined, Buffer.alloc(0), 'POST', '/p')).toBeInstanceOf(VcdBusyError);
    expect(mapError(401, undefined, Buffer.alloc(0), 'GET', '/p')).toBeInstanceOf(VcdAuthError);
    const err = mapError(400, undefined, Buffer.from('<Error xmlns="http://www.vmware.com/vcloud/v1.5" majorErrorCode="400" minorErrorCode="DUPLICATE_NAME" message="The VCD entity test_16 already exists."/>'), 'POST', '/p');
    expect(err).toBeInstanceOf(VcdApiError);
    expect(err).toMatchObject({ status: 400, minorErrorCode: 'DUPLICATE_NAME', vcdMessage: 'The VCD entity test_16 already exists.' });
  });

  it('rejects an error body with a DOCTYPE rather than expanding it', () => {
    const evil = Buffer.from('<!DOCTYPE e [<!ENTITY x "y">]><Error majorErrorCode="500" minorErrorCode="&x;" message="m"/>');
    expect(parseErrorBody(undefined, evil).minorErrorCode).toBeNull();
  });
});
