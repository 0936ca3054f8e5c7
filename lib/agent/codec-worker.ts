import { parentPort, workerData } from 'node:worker_threads';
import { BlockCodec, isZeroBlock } from '../repository/block-codec.js';
import { BlockCorruptError } from '../repository/errors.js';
import type { CodecRequest, CodecResponse, CodecWorkerData } from './codec-protocol.js';

/**
 * A CPU worker of the block pipeline: zero check, hash, compare with the parent's hash, compress and
 * encrypt (backup), or decrypt, decompress and verify (restore). Buffers arrive and leave as transferred
 * ArrayBuffers, so nothing is copied between threads.
 */
const data = workerData as CodecWorkerData;
const codec = new BlockCodec({
  compressionLevel: data.compressionLevel,
  keys: data.dataKey && data.macKey ? { dataKey: Buffer.from(data.dataKey), macKey: Buffer.from(data.macKey) } : undefined,
  namingKey: data.namingKey ? Buffer.from(data.namingKey) : undefined,
});

function handle(req: CodecRequest): { res: CodecResponse; transfer: ArrayBuffer[] } {
  try {
    return answer(req);
  } catch (err) {
    // An error answers the one request; the worker (shared by every task of the agent) lives on.
    const e = err as Error;
    return { res: { id: req.id, kind: 'error', code: err instanceof BlockCorruptError ? 'BLOCK_CORRUPT' : 'ERROR', message: e.message, blockKey: err instanceof BlockCorruptError ? err.blockKey : undefined }, transfer: [] };
  }
}

function answer(req: CodecRequest): { res: CodecResponse; transfer: ArrayBuffer[] } {
  if (req.op === 'compare') {
    // Quick rollback: is this block of the target already what the point holds? Hash only, no encoding.
    const block = Buffer.from(req.block, 0, req.length);
    const same = req.expected === null ? isZeroBlock(block) : !isZeroBlock(block) && codec.hash(block).equals(req.expected);
    return { res: { id: req.id, kind: 'compared', same }, transfer: [] };
  }
  if (req.op === 'encode') {
    const block = Buffer.from(req.block, 0, req.length);
    if (isZeroBlock(block)) return { res: { id: req.id, kind: 'zero' }, transfer: [] };
    const hash = codec.hash(block);
    if (req.parentHash && hash.equals(req.parentHash)) return { res: { id: req.id, kind: 'same', hash: toArrayBuffer(hash) }, transfer: [] };
    const encoded = codec.encodeBlock(block, hash);
    const out = toArrayBuffer(encoded);
    return { res: { id: req.id, kind: 'encoded', hash: toArrayBuffer(hash), encoded: out }, transfer: [out] };
  }
  const plain = codec.decodeBlock(Buffer.from(req.encoded), Buffer.from(req.hash));
  const out = toArrayBuffer(plain);
  return { res: { id: req.id, kind: 'decoded', plain: out }, transfer: [out] };
}

/** A Buffer's bytes as an ArrayBuffer of their own (Buffers may be views into a shared pool). */
function toArrayBuffer(buf: Buffer): ArrayBuffer {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer) return buf.buffer;
  const copy = new ArrayBuffer(buf.byteLength);
  new Uint8Array(copy).set(buf);
  return copy;
}

parentPort!.on('message', (req: CodecRequest) => {
  const { res, transfer } = handle(req);
  parentPort!.postMessage(res, transfer);
});
