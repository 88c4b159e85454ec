// What "a clean result" means for decoded messages and API bodies: plain JSON data only (plain objects,
// arrays, strings, finite numbers, booleans, null), no cycles, no class instances (Date, Map, RegExp,
// Uint8Array, tags), bounded depth. Written apart from bus/schema.ts so the fuzz tests do not trust the
// code they test.

/** The first way `v` is not plain JSON data, or undefined when it is. */
export function notJsonData(v: unknown, maxDepth = 64, opts: { undefinedFields?: boolean } = {}): string | undefined {
  const seen = new Set<object>();
  const walk = (x: unknown, path: string, depth: number): string | undefined => {
    if (depth > maxDepth) return `${path}: nested deeper than ${maxDepth}`;
    if (x === null || typeof x === "string" || typeof x === "boolean") return undefined;
    if (typeof x === "number") return Number.isFinite(x) ? undefined : `${path}: ${x} is not a finite number`;
    if (typeof x !== "object") return `${path}: a ${typeof x}`;
    if (seen.has(x)) return `${path}: a cycle or a shared reference`;
    seen.add(x);
    if (Array.isArray(x)) {
      for (let i = 0; i < x.length; i++) {
        if (!(i in x)) return `${path}[${i}]: a hole`;
        const p = walk(x[i], `${path}[${i}]`, depth + 1);
        if (p) return p;
      }
    } else {
      const proto = Object.getPrototypeOf(x);
      if (proto !== Object.prototype && proto !== null) return `${path}: a ${Object.prototype.toString.call(x)}, not a plain object`;
      for (const k of Object.keys(x)) {
        if (opts.undefinedFields && (x as Record<string, unknown>)[k] === undefined) continue;
        const p = walk((x as Record<string, unknown>)[k], `${path}.${k}`, depth + 1);
        if (p) return p;
      }
    }
    seen.delete(x);
    return undefined;
  };
  return walk(v, "value", 0);
}
