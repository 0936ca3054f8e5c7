import type { S3Client } from '@aws-sdk/client-s3';
import type { Catalog } from '../catalog/catalog.js';
import type { Clock } from '../domain/clock.js';
import { CodecPool } from '../agent/codec-pool.js';
import type { AgentRepositories } from '../agent/task-runner.js';
import { BackupError } from '../errors.js';
import type { RepositoryRef } from '../queue/messages.js';
import type { KeySource } from '../repository/keys.js';
import { RepositoryNotFoundError } from '../repository/errors.js';
import { Repository } from '../repository/repository.js';
import { S3Store } from '../repository/s3-store.js';
import { openStore, parseRepositoryUrl } from '../repository/url.js';
import type { RepositoryOpener } from '../services/ports.js';

/**
 * Open repositories by URL, each once, with the key source of the deployment (local mode: one passphrase
 * under the data dir). Serves the services (by catalog id) and the agent (by the reference in a task), each
 * bound to a tenant: the view names and seals that tenant's blocks under keys derived for it, and codec pools
 * (whose workers hold those keys) are kept per URL and tenant.
 */
export class RepositoryRegistry implements RepositoryOpener, AgentRepositories {
  private readonly open_ = new Map<string, Promise<Repository>>();
  private readonly pools = new Map<string, CodecPool>();

  constructor(
    private readonly options: {
      catalog?: Catalog;
      s3?: S3Client;
      /** The key of every repository, or per repository URL with `keySourceFor`. */
      keySource?: KeySource;
      keySourceFor?: (url: string) => KeySource | undefined;
      /** Static credentials for S3 endpoints opened by URL (otherwise the standard AWS chain). */
      credentials?: { accessKeyId: string; secretAccessKey: string };
      clock: Clock;
      initMissing?: boolean;
      /**
       * Create-only stores (the agent): conditional PUTs that never replace an object, no deletes. The agent
       * role's IAM policy demands it; never together with `initMissing` (an agent creates no repository).
       */
      createOnly?: boolean;
    },
  ) {}

  private repository(url: string, endpoint?: string, declaredPlaintext = false): Promise<Repository> {
    let p = this.open_.get(url);
    if (!p) {
      p = (async () => {
        const location = parseRepositoryUrl(url);
        const createOnly = this.options.createOnly ?? false;
        const store =
          location.kind === 's3' && this.options.s3
            ? new S3Store({ bucket: location.bucket, prefix: location.prefix, client: this.options.s3, createOnly })
            : openStore(url, { endpoint, credentials: this.options.credentials, createOnly });
        // A repository the provider declared plaintext is opened without a key: with one, format 2 refuses a
        // plaintext config.json as a downgrade, which is right for every repository not declared so.
        const keySource = declaredPlaintext ? undefined : (this.options.keySourceFor?.(url) ?? this.options.keySource);
        try {
          return await Repository.open(store, keySource);
        } catch (err) {
          if (!(err instanceof RepositoryNotFoundError) || !this.options.initMissing) throw err;
          return Repository.init(store, { clock: this.options.clock, keySource });
        }
      })();
      p.catch(() => this.open_.delete(url));
      this.open_.set(url, p);
    }
    return p;
  }

  /**
   * The repository `idOrRef` bound to `tenantId`'s namespace. Without a tenant: the repository's own
   * namespace (repository-level keys), for tools that are not acting for a tenant.
   */
  async open(idOrRef: string | RepositoryRef, tenantId?: string): Promise<{ repository: Repository; ref: RepositoryRef; pool: CodecPool }> {
    let ref: RepositoryRef;
    let plaintext = false;
    if (typeof idOrRef === 'string') {
      const row = await this.options.catalog?.getRepository(idOrRef);
      if (!row) throw new BackupError('REPOSITORY_UNKNOWN', `repository ${idOrRef} is not in the catalog`);
      ref = { id: row.id, url: row.url, endpoint: row.endpoint };
      plaintext = row.encrypted === false;
    } else ref = idOrRef;
    const base = await this.repository(ref.url, ref.endpoint, plaintext);
    const repository = tenantId === undefined ? base : base.forTenant(tenantId);
    const poolKey = `${ref.url}\n${tenantId ?? ''}`;
    const pools = this.pools;
    return {
      repository,
      ref,
      // Worker threads only for those who encode (the agent), not for the orchestrator.
      get pool(): CodecPool {
        let pool = pools.get(poolKey);
        if (!pool) {
          pool = new CodecPool(repository.codecSettings());
          pools.set(poolKey, pool);
        }
        return pool;
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }
}
