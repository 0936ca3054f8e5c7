/**
 * A tenant is one vCD organization. Everything a tenant names (scope items, run-now vApps, restore targets)
 * is looked up inside that organization only, so an id of another organization behaves exactly like an id
 * that does not exist. The service talks to vCD with provider credentials, which see every organization:
 * this binding, not vCD's own access control, is what keeps tenants apart.
 */
import { BackupError } from '../errors.js';
import type { Log } from '../log.js';
import { uuidOf } from './capture-mapping.js';
import type { VcdClient } from './client.js';
import { listOrgs } from './query.js';

/** The organization of a tenant: `vcdOrg` (an org name, URN, uuid or href), defaulting to the tenant id. */
export interface TenantOrgRef {
  readonly tenantId: string;
  readonly vcdOrg?: string;
}

export interface TenantOrg {
  /** `urn:vcloud:org:<uuid>` */
  readonly id: string;
  readonly uuid: string;
  readonly name: string;
}

/** The tenant's organization does not exist in vCD (renamed, deleted, or a misconfigured tenant). */
export class TenantOrgNotFoundError extends BackupError {
  constructor(tenant: TenantOrgRef) {
    super(
      'TENANT_ORG_NOT_FOUND',
      `tenant "${tenant.tenantId}" is bound to vCD organization "${tenant.vcdOrg ?? tenant.tenantId}", which vCD does not show; the provider sets the organization with the tenant's vcdOrg`,
    );
  }
}

/** Finds the tenant's organization by uuid/URN/href first, else by exact name. */
export async function resolveTenantOrg(client: VcdClient, tenant: TenantOrgRef, options: { log?: Log } = {}): Promise<TenantOrg> {
  const wanted = tenant.vcdOrg ?? tenant.tenantId;
  const orgs = await listOrgs(client, { log: options.log });
  const uuid = uuidOf(wanted);
  const org = uuid !== null ? orgs.find((o) => uuidOf(o.id) === uuid) : orgs.find((o) => o.name === wanted);
  if (!org) throw new TenantOrgNotFoundError(tenant);
  return { id: org.id, uuid: uuidOf(org.id)!, name: org.name };
}
