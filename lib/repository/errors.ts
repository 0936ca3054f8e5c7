import { BackupError, InvalidInputError } from '../errors.js';

/** A block's bytes do not match its key (bit rot, tampering, a wrong key): never restore them. */
export class BlockCorruptError extends BackupError {
  readonly blockKey: string;
  constructor(blockKey: string, reason: string, options?: { cause?: unknown }) {
    super('BLOCK_CORRUPT', `block ${blockKey} is corrupt: ${reason}. Run \`vcd-backup repo verify\` to list the restore points that need it`, options);
    this.blockKey = blockKey;
  }
}

/** A block a restore point refers to is not in the repository. */
export class BlockMissingError extends BackupError {
  readonly blockKey: string;
  constructor(blockKey: string, options?: { cause?: unknown }) {
    super('BLOCK_MISSING', `block ${blockKey} is missing from the repository. Run \`vcd-backup repo verify\` to list the restore points that need it`, options);
    this.blockKey = blockKey;
  }
}

export class RepositoryNotFoundError extends InvalidInputError {
  constructor(where: string) {
    super(`no repository at ${where} (config.json is missing): create one with \`vcd-backup repo init --repo URL\` or fix the URL`, { code: 'REPOSITORY_NOT_FOUND' });
  }
}

export class RepositoryExistsError extends InvalidInputError {
  constructor(where: string) {
    super(`a repository already exists at ${where}; refusing to overwrite it`, { code: 'REPOSITORY_EXISTS' });
  }
}

/** The repository is encrypted and the key given does not open it, or no key was given. */
export class RepositoryKeyError extends InvalidInputError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'REPOSITORY_KEY' });
  }
}

/** An object in the repository does not follow the format (a newer version, or damage). */
export class RepositoryFormatError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('REPOSITORY_FORMAT', message, options);
  }
}

export class PointNotFoundError extends InvalidInputError {
  constructor(pointId: string, where: string) {
    super(`restore point ${pointId} is not in ${where} (or was not committed): list them with \`vcd-backup repo points\``, { code: 'POINT_NOT_FOUND' });
  }
}

/**
 * An object fails an integrity check that only tampering (or a storage fault) explains: a config.json that
 * lost its encryption or MAC, a point.json that is not where its ids say or whose MAC does not match.
 * Names the object; never holds key material.
 */
export class RepositoryIntegrityError extends BackupError {
  readonly objectKey: string;
  constructor(objectKey: string, reason: string, options?: { cause?: unknown }) {
    super('REPOSITORY_TAMPERED', `${objectKey} failed its integrity check: ${reason}. Do not trust this repository's storage until this is explained; run \`vcd-backup repo verify\` to list every affected object`, options);
    this.objectKey = objectKey;
  }
}
