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

/** A map as a decoder makes it: not an array, a byte string, a Date, a Map or any other class's instance. */
const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/** A key that `Object.assign` and CBOR encoders treat as the prototype, and cbor-x renames (issue 19). */
const PROTO_KEY = "a key named __proto__ is refused";

export const recordOf =
  <T>(item: Schema<T>, maxKeys = MAX_ARRAY): Schema<Record<string, T>> =>
  (v) => {
    if (!isPlainObject(v)) return new Invalid("expected a map");
    const out: Record<string, T> = Object.create(null);
    let n = 0;
    for (const k in v) {
      if (++n > maxKeys) return new Invalid(`more than ${maxKeys} keys`);
      if (k === "__proto__") return new Invalid(PROTO_KEY);
      const r = item(v[k]);
      if (r instanceof Invalid) return r.path.unshift(k), r;
      out[k] = r;
    }
    return out;
  };

const MAX_ANY_DEPTH = 32;

/** The first way `v` is not plain JSON data within `depth` more levels: the problem, with its path. */
function jsonDataProblem(v: unknown, depth: number): Invalid | undefined {
  if (v === null || typeof v === "string" || typeof v === "boolean") return undefined;
  if (typeof v === "number") return Number.isFinite(v) ? undefined : new Invalid("expected a finite number");
  if (depth === 0) return new Invalid(`nested deeper than ${MAX_ANY_DEPTH} levels`);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = jsonDataProblem(v[i], depth - 1);
      if (p) return p.path.unshift(i), p;
    }
    return undefined;
  }
  if (!isPlainObject(v)) return new Invalid("expected JSON data (a map, list, string, number, boolean or null)");
  for (const k in v) {
    if (k === "__proto__") return new Invalid(PROTO_KEY);
    const p = jsonDataProblem(v[k], depth - 1);
    if (p) return p.path.unshift(k), p;
  }
  return undefined;
}

/**
 * Any JSON data in a map (credentials, vcap_application): checked to be plain data, at most 32 levels
 * deep (issue 19: a Date, a cycle or 100,000 levels of nesting once reached the handlers, which turn it
 * into JSON). A cycle is refused as too deep.
 */
export const anyMap: Schema<Record<string, unknown>> = (v) => {
  if (!isPlainObject(v)) return new Invalid("expected a map");
  return jsonDataProblem(v, MAX_ANY_DEPTH) ?? v;
};

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
