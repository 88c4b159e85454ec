// Reading fields of OSB request bodies (untrusted JSON), and comparing parameters for idempotency.

type Params = Record<string, unknown>;

export function stringField(obj: unknown, key: string): string | undefined {
  if (typeof obj !== "object" || obj === null) return undefined;
  const v = (obj as Params)[key];
  return typeof v === "string" && v !== "" ? v : undefined;
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
