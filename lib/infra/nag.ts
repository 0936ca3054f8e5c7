import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { repositoryBucketNagArn, type RepositoryRef } from './repository-bucket.js';

const OBJECT_KEYS_REASON =
  'Repository object keys are content hashes and point ids unknown at deploy time (DESIGN.md §3 key layout); the grant names explicit actions and only the objects under the repository prefix.';

/**
 * Acknowledges cdk-nag's AwsSolutions-IAM5 finding for one object-ARN pattern under a repository prefix,
 * and only that pattern: cdk-nag 3 matches findings by their exact id, `Resource::<bucket ARN>/prefix/...`.
 */
export function acknowledgeRepositoryObjects(scope: IConstruct, repository: RepositoryRef, suffix: string): void {
  Validations.of(scope).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${repositoryBucketNagArn(repository.definition)}/${repository.prefix}${suffix}]`,
    reason: OBJECT_KEYS_REASON,
  });
}
