// Reading fields of OSB request bodies (untrusted JSON), and comparing parameters for idempotency.

type Params = Record<string, unknown>;

export function stringField(obj: unknown, key: string): string | undefined {
  if (typeof obj !== "object" || obj === null) return undefined;
  const v = (obj as Params)[key];
  return typeof v === "string" && v !== "" ? v : undefined;
}

/**
 * A field the spec marks REQUIRED, a non-empty string (OSB 2.17 § Provisioning: "MUST be a non-empty
 * string"): its value, or the 400 description that names it. `where` says body field or query parameter.
 */
export function requiredString(obj: unknown, key: string, where: "body" | "query" = "body"): { value: string } | { missing: string } {
  const value = stringField(obj, key);
  if (value !== undefined) return { value };
  const raw = typeof obj === "object" && obj !== null ? (obj as Params)[key] : undefined;
  const what = where === "query" ? `query parameter ${key}` : key;
  const why = raw === undefined ? "is missing" : raw === "" ? "is empty" : "is not a string";
  return { missing: `${what} ${why}: it is required, a non-empty string` };
}

/** An optional field that, when present, must be a JSON object: undefined when absent, `false` when malformed. */
export function optionalObject(obj: unknown, key: string): Params | undefined | false {
  if (typeof obj !== "object" || obj === null) return undefined;
  const v = (obj as Params)[key];
  if (v === undefined || v === null) return undefined;
  return typeof v === "object" && !Array.isArray(v) ? (v as Params) : false;
}

export function objectField(obj: unknown, key: string): Params | undefined {
  if (typeof obj !== "object" || obj === null) return undefined;
  const v = (obj as Params)[key];
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Params) : undefined;
}

/** Deep equality of JSON values, independent of key order. */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (typeof v === "object" && v !== null) {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((v as Params)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}
