import { open } from 'node:fs/promises';

/** Overwrites `data.length` bytes of `file` at `offset`, as a guest writing to its disk would. */
export async function writeAt(file: string, offset: number, data: Buffer): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.write(data, 0, data.length, offset);
  } finally {
    await handle.close();
  }
}
