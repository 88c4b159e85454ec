// The typed-array columns of a route-table store, sized together: every column named is replaced by
// one of `capacity` rows holding the old contents (a store's fields start as empty arrays of their
// type, so one call sizes them at construction and the same call grows them).

type Column = Int32Array | Float64Array | Uint8Array;

/** `names` may be private fields, which TypeScript's keyof cannot name: a wrong one throws at construction. */
export function sizeColumns(store: object, names: readonly string[], capacity: number): void {
  const columns = store as unknown as Record<string, Column>;
  for (const name of names) {
    const old = columns[name]!;
    const next = new (old.constructor as new (n: number) => Column)(capacity);
    next.set(old);
    columns[name] = next;
  }
}
