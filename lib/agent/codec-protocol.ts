/** Messages between the block pipeline and its codec workers (see codec-worker.ts). */
export interface CodecWorkerData {
  readonly compressionLevel: number;
  readonly dataKey?: Uint8Array;
  readonly macKey?: Uint8Array;
  /** Plaintext repositories opened for a tenant: the block-naming key. */
  readonly namingKey?: Uint8Array;
}

export type CodecRequest =
  | { readonly id: number; readonly op: 'encode'; readonly block: ArrayBuffer; readonly length: number; readonly parentHash: Uint8Array | null }
  | { readonly id: number; readonly op: 'decode'; readonly encoded: ArrayBuffer; readonly hash: Uint8Array }
  | { readonly id: number; readonly op: 'compare'; readonly block: ArrayBuffer; readonly length: number; readonly expected: Uint8Array | null };

export type CodecResponse =
  | { readonly id: number; readonly kind: 'zero' }
  | { readonly id: number; readonly kind: 'same'; readonly hash: ArrayBuffer }
  | { readonly id: number; readonly kind: 'encoded'; readonly hash: ArrayBuffer; readonly encoded: ArrayBuffer }
  | { readonly id: number; readonly kind: 'decoded'; readonly plain: ArrayBuffer }
  | { readonly id: number; readonly kind: 'compared'; readonly same: boolean }
  | { readonly id: number; readonly kind: 'error'; readonly code: string; readonly message: string; readonly blockKey?: string };
