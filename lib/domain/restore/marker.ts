/**
 * A vApp being re-created carries this metadata entry (SYSTEM domain, PRIVATE when the restorer may write
 * it, else GENERAL) with the restore point id until the restore finishes: a rerun recognises its own
 * unfinished vApp by it and continues instead of reporting the name as taken.
 */
export const RESTORE_MARKER_KEY = 'vcd-backup.restore-in-progress';
