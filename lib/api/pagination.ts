import { z } from 'zod';
import { ApiError } from './errors.js';
import { DEFAULT_PAGE_SIZE } from './schemas.js';

/**
 * Cursor pagination over an ordered list. The cursor is opaque to clients: base64url JSON holding the sort
 * key of the last item returned and a tag of the list it belongs to, so a cursor pasted into another list
 * (or tampered with) is refused with 400 instead of silently returning the wrong page. Keyset, not offset:
 * items created between two page requests do not shift or repeat what the client already has.
 */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

const CursorSchema = z.strictObject({ v: z.literal(1), l: z.string(), k: z.string() });

export function encodeCursor(list: string, key: string): string {
  return Buffer.from(JSON.stringify({ v: 1, l: list, k: key })).toString('base64url');
}

export function decodeCursor(list: string, cursor: string): string {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    json = undefined;
  }
  const parsed = CursorSchema.safeParse(json);
  if (!parsed.success || parsed.data.l !== list) {
    throw new ApiError('INVALID_CURSOR', 'the cursor is not valid for this list; pass the nextCursor of the previous page unchanged, with the same filters', { details: { field: 'query.cursor' } });
  }
  return parsed.data.k;
}

/**
 * One page of `items`, which must already be ordered by `key` (ascending, or descending with `descending`).
 * `list` tags the cursor: include the filters in it.
 */
export function paginate<T>(items: readonly T[], options: { list: string; key: (item: T) => string; limit?: number; cursor?: string; descending?: boolean }): Page<T> {
  const limit = options.limit ?? DEFAULT_PAGE_SIZE;
  let rest = items;
  if (options.cursor !== undefined) {
    const after = decodeCursor(options.list, options.cursor);
    rest = items.filter((item) => (options.descending ? options.key(item) < after : options.key(item) > after));
  }
  const pageItems = rest.slice(0, limit);
  const last = pageItems[pageItems.length - 1];
  const nextCursor = rest.length > limit && last !== undefined ? encodeCursor(options.list, options.key(last)) : null;
  return { items: pageItems, nextCursor };
}

/** Orders by a string key (code unit order, matching the cursor comparison). */
export function sortByKey<T>(items: T[], key: (item: T) => string, descending = false): T[] {
  return items.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    const d = ka < kb ? -1 : ka > kb ? 1 : 0;
    return descending ? -d : d;
  });
}
