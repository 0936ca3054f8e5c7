/**
 * Stands in for `zstd-napi` inside Lambda bundles (esbuild `--alias:zstd-napi=...`, set by
 * ServiceFunction): zstd-napi is a native addon built for the build machine, which cannot ship to ARM64
 * Lambda, while Node.js 22.15+ has zstd in `node:zlib`. Only the API the block codec uses is provided:
 * `Compressor#setParameters({ compressionLevel })`, `Compressor#compress`, `Decompressor#decompress`.
 * Frames are standard zstd, so blocks written here and by the agent's zstd-napi read back either way.
 */
import * as zlib from 'node:zlib';

interface ZstdZlib {
  readonly zstdCompressSync?: (data: Uint8Array, options?: { params?: Record<number, number> }) => Buffer;
  readonly zstdDecompressSync?: (data: Uint8Array) => Buffer;
  readonly constants: { readonly ZSTD_c_compressionLevel?: number };
}

const z = zlib as unknown as ZstdZlib;

function need<T>(fn: T | undefined): T {
  if (fn === undefined) throw new Error(`node:zlib has no zstd in Node.js ${process.version}: the Lambda bundles need Node.js 22.15 or later`);
  return fn;
}

export class Compressor {
  private level = 3;

  setParameters(parameters: { readonly compressionLevel?: number }): void {
    if (parameters.compressionLevel !== undefined) this.level = parameters.compressionLevel;
  }

  compress(data: Uint8Array): Buffer {
    const level = need(z.constants.ZSTD_c_compressionLevel);
    return need(z.zstdCompressSync)(data, { params: { [level]: this.level } });
  }
}

export class Decompressor {
  decompress(data: Uint8Array): Buffer {
    return need(z.zstdDecompressSync)(data);
  }
}
