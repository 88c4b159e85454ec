// A tiny validating-decoder kit: each Schema<T> checks an unknown value and returns a clean T or
// the path of the first problem. No dependency; the bus's decoders are built from these.

export type Check<T> = { ok: true; value: T } | { ok: false; error: string };
export type Schema<T> = (v: unknown, path: string) => Check<T>;

const ok = <T>(value: T): Check<T> => ({ ok: true, value });
const fail = (path: string, what: string): Check<never> => ({ ok: false, error: `${path || "message"}: ${what}` });

const MAX_STRING = 64 * 1024;
const MAX_ARRAY = 100_000;

export const str =
  (max = MAX_STRING): Schema<string> =>
  (v, p) =>
    typeof v === "string" ? (v.length <= max ? ok(v) : fail(p, `longer than ${max}`)) : fail(p, "expected a string");

export const nonEmpty =
  (max = MAX_STRING): Schema<string> =>
  (v, p) =>
    typeof v === "string" && v.length > 0
      ? v.length <= max
        ? ok(v)
        : fail(p, `longer than ${max}`)
      : fail(p, "expected a non-empty string");

export const num: Schema<number> = (v, p) =>
  typeof v === "number" && Number.isFinite(v) ? ok(v) : fail(p, "expected a finite number");

export const int =
  (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): Schema<number> =>
  (v, p) =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max
      ? ok(v)
      : fail(p, `expected an integer in [${min}, ${max}]`);

export const bool: Schema<boolean> = (v, p) => (typeof v === "boolean" ? ok(v) : fail(p, "expected a boolean"));

/** A string, or a number that is carried as its decimal string (CF sends indices either way). */
export const stringish: Schema<string> = (v, p) =>
  typeof v === "string" ? ok(v) : typeof v === "number" && Number.isFinite(v) ? ok(String(v)) : fail(p, "expected a string");

export const oneOf =
  <const T extends readonly string[]>(values: T): Schema<T[number]> =>
  (v, p) =>
    typeof v === "string" && (values as readonly string[]).includes(v)
      ? ok(v as T[number])
      : fail(p, `expected one of ${values.join(", ")}`);

export const arrayOf =
  <T>(item: Schema<T>, max = MAX_ARRAY): Schema<T[]> =>
  (v, p) => {
    if (!Array.isArray(v)) return fail(p, "expected an array");
    if (v.length > max) return fail(p, `more than ${max} items`);
    const out: T[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const r = item(v[i], `${p}[${i}]`);
      if (!r.ok) return r;
      out[i] = r.value;
    }
    return ok(out);
  };

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

export const recordOf =
  <T>(item: Schema<T>, maxKeys = MAX_ARRAY): Schema<Record<string, T>> =>
  (v, p) => {
    if (!isPlainObject(v)) return fail(p, "expected a map");
    const keys = Object.keys(v);
    if (keys.length > maxKeys) return fail(p, `more than ${maxKeys} keys`);
    const out: Record<string, T> = Object.create(null);
    for (const k of keys) {
      const r = item(v[k], `${p}.${k}`);
      if (!r.ok) return r;
      out[k] = r.value;
    }
    return ok(out);
  };

/** Any value at all (credentials, vcap_application): only checked to be a map. */
export const anyMap: Schema<Record<string, unknown>> = (v, p) => (isPlainObject(v) ? ok(v) : fail(p, "expected a map"));

const OPTIONAL = Symbol("optional");
type Optional<T> = Schema<T | undefined> & { [OPTIONAL]: true };

/** A field that may be absent (or null, which JSON senders use for "absent"). */
export const optional = <T>(s: Schema<T>): Optional<T> => {
  const f = ((v: unknown, p: string) => (v === undefined || v === null ? ok(undefined) : s(v, p))) as Optional<T>;
  f[OPTIONAL] = true;
  return f;
};

type Fields<T> = { [K in keyof T]-?: undefined extends T[K] ? Optional<Exclude<T[K], undefined>> : Schema<T[K]> };

/** A map with known fields; unknown fields are dropped so nothing unchecked reaches a handler. */
export const object =
  <T>(fields: Fields<T>): Schema<T> =>
  (v, p) => {
    if (!isPlainObject(v)) return fail(p, "expected a map");
    const out: Record<string, unknown> = {};
    for (const key in fields) {
      const r = (fields[key] as Schema<unknown>)(v[key], p ? `${p}.${key}` : key);
      if (!r.ok) return r;
      if (r.value !== undefined) out[key] = r.value;
    }
    return ok(out as T);
  };
