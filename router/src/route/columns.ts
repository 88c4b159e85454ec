// Growing a typed-array column of the route table (capacity doubles; the old contents are kept).

type Column = Int32Array | Float64Array | Uint8Array;

export function grown<T extends Column>(column: T, capacity: number): T {
  const next = new (column.constructor as new (n: number) => T)(capacity);
  next.set(column);
  return next;
}
