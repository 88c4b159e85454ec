// The typed-array columns of a route-table store, sized together. A column the worker threads read
// lives on a growable SharedArrayBuffer: it grows in place (the engine reserves its maximum as
// address space; the kernel backs pages as rows are first written), so growth never copies, and every
// thread makes itself a new view of the longer buffer when the table's layout counter says it grew
// (TableControl.layout). Views are fixed-length: under Node 20 an element of a length-tracking view
// of a growable buffer costs ~60 ns to read against ~4 for a fixed one (measured), which the request
// path cannot afford. A column only the writer reads is an ordinary typed array, replaced by a larger
// copy when it grows.

type Column = Int32Array | Float64Array | Uint8Array;
type ColumnType = new (buffer: ArrayBufferLike) => Column;

/** the most rows a shared column can grow to: 32M routes (address space only until used) */
export const MAX_SHARED_ROWS = 1 << 25;

/** An empty column of `type` on a growable SharedArrayBuffer (see sizeColumn for growing it). */
export function sharedColumn<T extends Column>(type: new (buffer: ArrayBufferLike, offset: number, length: number) => T): T {
  const bytes = (type as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  return new type(growableSharedBuffer(0, MAX_SHARED_ROWS * bytes), 0, 0);
}

/** A fixed-length view of the whole of `column`'s buffer as it is now (another thread may have grown it). */
export function wholeView<T extends Column>(column: T): T {
  return new (column.constructor as new (b: ArrayBufferLike, o: number, n: number) => T)(column.buffer, 0, column.buffer.byteLength / column.BYTES_PER_ELEMENT);
}

/** A SharedArrayBuffer that grows in place up to `maxBytes` (ES2024; Node 20 and Bun have it, the TS lib here does not). */
export function growableSharedBuffer(bytes: number, maxBytes: number): SharedArrayBuffer {
  return new (SharedArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => SharedArrayBuffer)(bytes, { maxByteLength: maxBytes });
}

/** `names` may be private fields, which TypeScript's keyof cannot name: a wrong one throws at construction. */
export function sizeColumns(store: object, names: readonly string[], capacity: number): void {
  const columns = store as unknown as Record<string, Column>;
  for (const name of names) {
    const old = columns[name];
    if (old === undefined) throw new Error(`no column ${name}`);
    columns[name] = sizeColumn(old, capacity);
  }
}

/** The column with room for `capacity` rows: a view of the same buffer grown in place when it is shared. */
export function sizeColumn<T extends Column>(old: T, capacity: number): T {
  const buffer = old.buffer as ArrayBufferLike & { growable?: boolean; grow?(n: number): void; maxByteLength?: number };
  if (buffer instanceof SharedArrayBuffer && buffer.growable) {
    const bytes = capacity * old.BYTES_PER_ELEMENT;
    if (bytes > buffer.maxByteLength!) throw new RangeError(`the route table is full: ${capacity} rows is more than ${MAX_SHARED_ROWS}`);
    if (bytes > buffer.byteLength) buffer.grow!(bytes);
    return wholeView(old);
  }
  const next = new (old.constructor as ColumnType)(new ArrayBuffer(capacity * old.BYTES_PER_ELEMENT)) as T;
  next.set(old);
  return next;
}
