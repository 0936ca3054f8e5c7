import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { Secret } from '../../lib/secret.js';
import {
  InvalidLoginError,
  ManagedObjectNotFoundError,
  readVirtualMachine,
  SoapClient,
  VsphereNetworkError,
  VsphereSession,
  VsphereXmlError,
  vmRef,
} from '../../lib/vsphere/index.js';
import { startVcsim, type Vcsim } from '../helpers/vcsim.js';

let sim: Vcsim;

beforeAll(async () => {
  sim = await startVcsim({ tls: true });
});

afterAll(async () => {
  await sim?.stop();
});

const login = (extra: { fingerprint?: string; password?: Secret } = {}) =>
  VsphereSession.login({
    url: sim.url,
    userName: sim.userName,
    password: extra.password ?? sim.password,
    tls: { fingerprint: extra.fingerprint ?? sim.thumbprint ?? '' },
  });

describe('vSphere session against vcsim', () => {
  it('logs in with the session cookie, reads the service content and logs out', async () => {
    const session = await login();
    expect(session.client.sessionCookie).toMatch(/\S+/);
    expect(session.content.about.apiType).toBe('VirtualCenter');
    expect(session.content.propertyCollector.type).toBe('PropertyCollector');
    const cookie = session.client.sessionCookie;
    await session.logout();
    expect(session.client.sessionCookie).toBeNull();

    // The old cookie no longer works: vcsim answers NotAuthenticated for a logged-out session.
    const stale = new SoapClient({ url: sim.url, tls: { fingerprint: sim.thumbprint ?? '' } });
    stale.sessionCookie = cookie;
    await expect(stale.call('CreateContainerView', session.content.viewManager, '')).rejects.toMatchObject({ code: 'VSPHERE_NOT_AUTHENTICATED' });
    stale.close();
  });

  it('refuses a bad password with InvalidLoginError, never printing the password', async () => {
    const err = await login({ password: new Secret('wrong-password-123') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidLoginError);
    expect((err as InvalidLoginError).code).toBe('VSPHERE_INVALID_LOGIN');
    expect((err as Error).message).toContain(sim.userName);
    expect(`${(err as Error).message} ${inspect(err)}`).not.toContain('wrong-password-123');
  });

  it('refuses a certificate that does not match the pinned thumbprint, before sending the password', async () => {
    const wrong = 'ab'.repeat(32);
    const err = await login({ fingerprint: wrong }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VsphereNetworkError);
    expect((err as VsphereNetworkError).code).toBe('VSPHERE_TLS_PIN_MISMATCH');
  });

  it('refuses the self-signed certificate without a pin (system CAs)', async () => {
    const err = await VsphereSession.login({ url: sim.url, userName: sim.userName, password: sim.password }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VsphereNetworkError);
    expect((err as VsphereNetworkError).code).toBe('VSPHERE_TLS_UNTRUSTED');
  });

  it('reads the disks, power state and CBT flag of a VM', async () => {
    const session = await login();
    try {
      const vm = sim.vms[0]!;
      const info = await readVirtualMachine(session, vmRef(vm.moref));
      expect(info.name).toBe(vm.name);
      expect(info.powerState).toBe('poweredOn');
      expect(info.changeTrackingEnabled).toBe(false);
      expect(info.disks).toHaveLength(1);
      const disk = info.disks[0]!;
      expect(disk.capacityInBytes).toBe(8 * 1024 * 1024);
      expect(disk.fileName).toMatch(/^\[LocalDS_0\] .+\/disk1\.vmdk$/);
      expect(disk.backingType).toBe('VirtualDiskFlatVer2BackingInfo');
      expect(disk.datastore?.type).toBe('Datastore');
      expect(disk.changeId).toBeNull();
      expect(info.snapshots).toEqual([]);
    } finally {
      await session.logout();
    }
  });

  it('maps an unknown moref to ManagedObjectNotFoundError', async () => {
    const session = await login();
    try {
      const err = await readVirtualMachine(session, vmRef('vm-does-not-exist')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ManagedObjectNotFoundError);
      expect((err as ManagedObjectNotFoundError).moref).toBe('vm-does-not-exist');
    } finally {
      await session.logout();
    }
  });

  it('refuses a SOAP answer with a DOCTYPE', async () => {
    const { parseSoapResponse } = await import('../../lib/vsphere/soap.js');
    const body = Buffer.from('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"/>');
    expect(() => parseSoapResponse({ status: 200, headers: { 'content-type': 'text/xml' }, body }, 'Login')).toThrow(VsphereXmlError);
  });
});
