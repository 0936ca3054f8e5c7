/**
 * Typed errors of the vSphere client. vSphere answers failures with SOAP faults named after vim25 types
 * (`InvalidLogin`, `ManagedObjectNotFound`, `FileFault`, ...); each known fault maps to a class with a stable
 * code and a message that says what to do. Messages never contain passwords or session cookies.
 */
import { BackupError } from '../errors.js';

export class VsphereError extends BackupError {
  constructor(code: string, message: string, options?: { cause?: unknown; userFacing?: boolean }) {
    super(code, message, options);
  }
}

/** A response we refuse or cannot read (DOCTYPE, not SOAP, missing fields). */
export class VsphereXmlError extends VsphereError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('VSPHERE_BAD_RESPONSE', message, options);
  }
}

/** The vCenter cannot be reached, or its certificate is refused. */
export class VsphereNetworkError extends VsphereError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'VSPHERE_NETWORK_ERROR', message, { cause: options?.cause, userFacing: true });
  }
}

/** A SOAP fault. `faultType` is the vim25 fault type name (govmomi's `types.<Name>`). */
export class VsphereFaultError extends VsphereError {
  readonly faultType: string;
  readonly faultMessage: string;

  constructor(faultType: string, faultMessage: string, options?: { cause?: unknown; code?: string; message?: string; userFacing?: boolean }) {
    super(options?.code ?? 'VSPHERE_FAULT', options?.message ?? `vSphere fault ${faultType}: ${faultMessage}`, {
      cause: options?.cause,
      userFacing: options?.userFacing,
    });
    this.faultType = faultType;
    this.faultMessage = faultMessage;
  }
}

export class InvalidLoginError extends VsphereFaultError {
  constructor(userName: string, faultMessage: string) {
    super('InvalidLogin', faultMessage, {
      code: 'VSPHERE_INVALID_LOGIN',
      message: `vCenter refused the login of ${userName}: check the user name and the password (the secret it is read from)`,
      userFacing: true,
    });
  }
}

export class NotAuthenticatedError extends VsphereFaultError {
  constructor(faultMessage: string) {
    super('NotAuthenticated', faultMessage, {
      code: 'VSPHERE_NOT_AUTHENTICATED',
      message: `the vCenter session is not (or no longer) logged in: log in again (${faultMessage})`,
    });
  }
}

export class NoPermissionError extends VsphereFaultError {
  constructor(faultMessage: string, privilegeId: string | null) {
    super('NoPermission', faultMessage, {
      code: 'VSPHERE_NO_PERMISSION',
      message: `the vCenter account lacks ${privilegeId ?? 'a privilege'}: grant the role listed in docs/vsphere.md (${faultMessage})`,
      userFacing: true,
    });
  }
}

export class ManagedObjectNotFoundError extends VsphereFaultError {
  readonly moref: string | null;
  constructor(faultMessage: string, moref: string | null) {
    super('ManagedObjectNotFound', faultMessage, {
      code: 'VSPHERE_OBJECT_NOT_FOUND',
      message: `vCenter has no object ${moref ?? '(unknown)'}: it was deleted, or the moref belongs to another vCenter (recapture the vApp)`,
      userFacing: true,
    });
    this.moref = moref;
  }
}

export class FileFaultError extends VsphereFaultError {
  readonly file: string | null;
  constructor(faultType: string, faultMessage: string, file: string | null) {
    super(faultType, faultMessage, {
      code: 'VSPHERE_FILE_FAULT',
      message: `vSphere ${faultType}${file ? ` on ${file}` : ''}: ${faultMessage}`,
    });
    this.file = file;
  }
}

export class TaskInProgressError extends VsphereFaultError {
  constructor(faultMessage: string) {
    super('TaskInProgress', faultMessage, {
      code: 'VSPHERE_TASK_IN_PROGRESS',
      message: `another vSphere task is running on this object; retry when it ends (${faultMessage})`,
    });
  }
}

export class InvalidStateError extends VsphereFaultError {
  constructor(faultType: string, faultMessage: string) {
    super(faultType, faultMessage, {
      code: 'VSPHERE_INVALID_STATE',
      message: `the object is in a state that does not allow this operation (${faultType}): ${faultMessage}`,
    });
  }
}

export class InvalidArgumentError extends VsphereFaultError {
  constructor(faultType: string, faultMessage: string, property: string | null) {
    super(faultType, faultMessage, {
      code: 'VSPHERE_INVALID_ARGUMENT',
      message: `vSphere refused an argument${property ? ` (${property})` : ''}: ${faultMessage}`,
    });
  }
}

/** The task did not finish before the deadline; it may still be running in vCenter. */
export class VsphereTaskTimeoutError extends VsphereError {
  readonly task: string;
  constructor(task: string, description: string, timeoutMs: number) {
    super('VSPHERE_TASK_TIMEOUT', `vSphere task ${task} (${description}) did not finish within ${timeoutMs} ms; it may still be running: check it in vCenter`);
    this.task = task;
  }
}

/** A disk the chosen transport cannot read (sparse, seSparse, vSAN, a snapshot chain). */
export class UnsupportedDiskError extends VsphereError {
  constructor(message: string) {
    super('VSPHERE_DISK_UNSUPPORTED', message, { userFacing: true });
  }
}

const FILE_FAULTS = new Set(['FileFault', 'FileNotFound', 'FileLocked', 'FileAlreadyExists', 'CannotAccessFile', 'CannotCreateFile', 'FileBackedPortNotSupported', 'FileTooLarge', 'NotADirectory', 'NotAFile']);
const STATE_FAULTS = new Set(['InvalidState', 'InvalidPowerState', 'InvalidHostState', 'InvalidDatastoreState', 'SnapshotFault', 'InvalidSnapshotFormat', 'TooManySnapshotLevels', 'SnapshotNoChange', 'SnapshotCopyNotSupported', 'SnapshotDisabled', 'SnapshotLocked', 'SnapshotIncompatibleDeviceInVm', 'NotSupported']);

/** The typed error for a fault, given its vim25 type name, its message and a few detail fields. */
export function faultToError(faultType: string, faultMessage: string, details: { moref?: string | null; file?: string | null; privilegeId?: string | null; property?: string | null; userName?: string } = {}): VsphereFaultError {
  switch (faultType) {
    case 'InvalidLogin':
      return new InvalidLoginError(details.userName ?? '(user)', faultMessage);
    case 'NotAuthenticated':
      return new NotAuthenticatedError(faultMessage);
    case 'NoPermission':
      return new NoPermissionError(faultMessage, details.privilegeId ?? null);
    case 'ManagedObjectNotFound':
      return new ManagedObjectNotFoundError(faultMessage, details.moref ?? null);
    case 'TaskInProgress':
      return new TaskInProgressError(faultMessage);
    case 'InvalidArgument':
    case 'InvalidRequest':
      return new InvalidArgumentError(faultType, faultMessage, details.property ?? null);
  }
  if (FILE_FAULTS.has(faultType)) return new FileFaultError(faultType, faultMessage, details.file ?? null);
  if (STATE_FAULTS.has(faultType)) return new InvalidStateError(faultType, faultMessage);
  return new VsphereFaultError(faultType, faultMessage);
}
