/**
 * A logged-in vim25 session: RetrieveServiceContent, Login (the `vmware_soap_session` cookie is kept by the
 * SoapClient), Logout. The password is a Secret and is revealed only into the Login request body.
 */
import { z } from 'zod';
import type { TlsSettings } from '../vcd/http.js';
import { child, textOf, type XmlNode } from '../vcd/xml.js';
import type { Secret } from '../secret.js';
import { InvalidLoginError, VsphereFaultError, VsphereXmlError } from './errors.js';
import { el, moRefOf, returnval, SoapClient, type ManagedObjectReference, type SoapClientOptions } from './soap.js';

/** The parts of govmomi `types.ServiceContent` this product uses. */
export interface ServiceContent {
  readonly rootFolder: ManagedObjectReference;
  readonly propertyCollector: ManagedObjectReference;
  readonly sessionManager: ManagedObjectReference;
  readonly viewManager: ManagedObjectReference;
  readonly about: { readonly apiType: string; readonly apiVersion: string; readonly fullName: string; readonly instanceUuid: string | null };
}

export const SERVICE_INSTANCE: ManagedObjectReference = { type: 'ServiceInstance', value: 'ServiceInstance' };

const aboutSchema = z.object({
  apiType: z.enum(['VirtualCenter', 'HostAgent']),
  apiVersion: z.string().regex(/^\d+\.\d+/),
  fullName: z.string().min(1),
  instanceUuid: z.string().nullable(),
});

export interface LoginOptions extends SoapClientOptions {
  readonly userName: string;
  readonly password: Secret;
}

export class VsphereSession {
  private constructor(
    readonly client: SoapClient,
    readonly content: ServiceContent,
    readonly userName: string,
  ) {}

  static async login(options: LoginOptions): Promise<VsphereSession> {
    const client = new SoapClient(options);
    try {
      const content = await retrieveServiceContent(client);
      try {
        await client.call('Login', content.sessionManager, el('userName', options.userName) + el('password', options.password.reveal()));
      } catch (err) {
        if (err instanceof VsphereFaultError && err.faultType === 'InvalidLogin') throw new InvalidLoginError(options.userName, err.faultMessage);
        throw err;
      }
      if (client.sessionCookie === null) throw new VsphereXmlError(`vCenter accepted the login of ${options.userName} but set no ${'vmware_soap_session'} cookie`);
      return new VsphereSession(client, content, options.userName);
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** Ends the session in vCenter (sessions count against a per-user limit) and closes the connections. */
  async logout(): Promise<void> {
    try {
      if (this.client.sessionCookie !== null) await this.client.call('Logout', this.content.sessionManager);
    } finally {
      this.client.sessionCookie = null;
      this.client.close();
    }
  }
}

export async function retrieveServiceContent(client: SoapClient): Promise<ServiceContent> {
  const rv = returnval(await client.call('RetrieveServiceContent', SERVICE_INSTANCE), 'RetrieveServiceContent');
  const about = child(rv, 'about');
  const parsed = aboutSchema.safeParse({
    apiType: textOf(about, 'apiType'),
    apiVersion: textOf(about, 'apiVersion'),
    fullName: textOf(about, 'fullName'),
    instanceUuid: textOf(about, 'instanceUuid'),
  });
  if (!parsed.success) throw new VsphereXmlError(`ServiceContent.about is not a vSphere answer: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const ref = (name: string): ManagedObjectReference => moRefOf(child(rv, name) as XmlNode | undefined, `ServiceContent.${name}`);
  return {
    rootFolder: ref('rootFolder'),
    propertyCollector: ref('propertyCollector'),
    sessionManager: ref('sessionManager'),
    viewManager: ref('viewManager'),
    about: parsed.data,
  };
}

export type { TlsSettings };
