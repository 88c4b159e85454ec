// A tiny validating-decoder kit: a Schema<T> checks an unknown value and returns a clean T, or an
// Invalid naming the first problem. Success allocates nothing but the output; the path of a problem
// is built only on failure, on the way back up. No dependency; the bus's decoders are built from these.

export class Invalid {
  /** innermost last: ["uris", 0] for `uris[0]` */
  readonly path: (string | number)[] = [];
  constructor(readonly what: string) {}

  toString(): string {
    let p = "";
    for (const k of this.path) p += typeof k === "number" ? `[${k}]` : p ? `.${k}` : k;
    return `${p || "message"}: ${this.what}`;
  }
}

export type Schema<T> = (v: unknown) => T | Invalid;

const MAX_STRING = 64 * 1024;
const MAX_ARRAY = 100_000;

export const str =
  (max = MAX_STRING): Schema<string> =>
  (v) =>
    typeof v !== "string" ? new Invalid("expected a string") : v.length > max ? new Invalid(`longer than ${max}`) : v;

export const nonEmpty =
  (max = MAX_STRING): Schema<string> =>
  (v) =>
    typeof v !== "string" || v.length === 0
      ? new Invalid("expected a non-empty string")
      : v.length > max
        ? new Invalid(`longer than ${max}`)
        : v;

export const num: Schema<number> = (v) => (typeof v === "number" && Number.isFinite(v) ? v : new Invalid("expected a finite number"));

export const int =
  (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): Schema<number> =>
  (v) =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? v : new Invalid(`expected an integer in [${min}, ${max}]`);

export const bool: Schema<boolean> = (v) => (typeof v === "boolean" ? v : new Invalid("expected a boolean"));

/** A string, or a number that is carried as its decimal string (CF sends indices either way). */
export const stringish: Schema<string> = (v) =>
  typeof v === "string" ? v : typeof v === "number" && Number.isFinite(v) ? String(v) : new Invalid("expected a string");

export const oneOf = <const T extends readonly string[]>(values: T): Schema<T[number]> => {
  const allowed = new Set<unknown>(values);
  return (v) => (allowed.has(v) ? (v as T[number]) : new Invalid(`expected one of ${values.join(", ")}`));
};

export const arrayOf =
  <T>(item: Schema<T>, max = MAX_ARRAY): Schema<T[]> =>
  (v) => {
    if (!Array.isArray(v)) return new Invalid("expected an array");
    if (v.length > max) return new Invalid(`more than ${max} items`);
    const out: T[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const r = item(v[i]);
      if (r instanceof Invalid) return r.path.unshift(i), r;
      out[i] = r;
    }
    return out;
  };

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

export const recordOf =
  <T>(item: Schema<T>, maxKeys = MAX_ARRAY): Schema<Record<string, T>> =>
  (v) => {
    if (!isPlainObject(v)) return new Invalid("expected a map");
    const out: Record<string, T> = Object.create(null);
    let n = 0;
    for (const k in v) {
      if (++n > maxKeys) return new Invalid(`more than ${maxKeys} keys`);
      const r = item(v[k]);
      if (r instanceof Invalid) return r.path.unshift(k), r;
      out[k] = r;
    }
    return out;
  };

/** Any value at all (credentials, vcap_application): only checked to be a map. */
export const anyMap: Schema<Record<string, unknown>> = (v) => (isPlainObject(v) ? v : new Invalid("expected a map"));

const OPTIONAL = Symbol("optional");
type Optional<T> = Schema<T | undefined> & { [OPTIONAL]: true };

/** A field that may be absent (or null, which JSON senders use for "absent"). */
export const optional = <T>(s: Schema<T>): Optional<T> => {
  const f = ((v: unknown) => (v === undefined || v === null ? undefined : s(v))) as Optional<T>;
  f[OPTIONAL] = true;
  return f;
};

type Fields<T> = { [K in keyof T]-?: undefined extends T[K] ? Optional<Exclude<T[K], undefined>> : Schema<T[K]> };

/** A map with known fields; unknown fields are dropped so nothing unchecked reaches a handler. */
export const object = <T>(fields: Fields<T>): Schema<T> => {
  const keys = Object.keys(fields) as (keyof T & string)[];
  const checks = keys.map((k) => fields[k] as Schema<unknown>);
  return (v) => {
    if (!isPlainObject(v)) return new Invalid("expected a map");
    const out: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const r = checks[i]!(v[key]);
      if (r instanceof Invalid) return r.path.unshift(key), r;
      if (r !== undefined) out[key] = r;
    }
    return out as T;
  };
};
