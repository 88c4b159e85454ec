// The manifest parser (cli/src/manifest.ts over cli/src/yaml.ts) on YAML-ish text: lines built from the
// tokens manifests are made of (indentation, "- ", keys, quoted and flow scalars, block scalars, anchors,
// tags, comments, tabs), nesting thousands deep, mutated real manifests, and manifests written from
// generated apps. Property: a ManifestError (with the YAML problem) or apps of the documented shape;
// plain data (no key turns into a prototype); a written manifest reads back as the apps it was written
// from; a bounded time.

import * as fc from "fast-check";
import { ManifestError, parseManifest, type AppManifest } from "../../../cli/src/manifest.ts";
import { jsonFile, readJson, timed, violated, type FuzzTarget } from "../lib/fuzz-target.ts";
import { notJsonData } from "../lib/json-data.ts";
import { mutated } from "../lib/mutate.ts";

export type ManifestInput = { text: string } | { apps: AppManifest[] };

const KEYS = ["applications", "name", "path", "instances", "memory", "disk_quota", "buildpacks", "buildpack", "command", "env", "routes", "route", "random-route", "no-route", "services", "health-check-type", "health-check-http-endpoint", "timeout", "stack", "__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "a b", "x:y", '"q"', "'s'", "-", "?"];
const SCALARS = ["hello", "256M", "1G", "1.5G", "99999999999999999999G", "0", "-1", "3", "1e400", "true", "no", "null", "~", '"a\\"b"', '"\\u0000"', '"\\ud800"', "'it''s'", '"unterminated', "'x", "[a, b]", "[[a], {b: c}]", "{a: 1, b: [2]}", "{}", "[]", "[", "{", "&anchor x", "*alias", "!!str x", "|", ">-", "|+", "# comment", "a # b", "http://x/y", "/health", "port", "none", "x".repeat(300)];

const line = fc.record({
  indent: fc.oneof(fc.constantFrom(0, 2, 4, 6), fc.nat({ max: 12 })),
  tab: fc.boolean().map((t) => t && Math.random() < 0.05),
  dash: fc.boolean(),
  key: fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 6 })),
  colon: fc.constantFrom(": ", ":", " : ", ""),
  value: fc.oneof(fc.constantFrom(...SCALARS), fc.string({ maxLength: 12 }), fc.constant("")),
}).map((l) => `${l.tab ? "\t" : ""}${" ".repeat(l.indent)}${l.dash ? "- " : ""}${l.key}${l.colon}${l.value}`);

const tokenText = fc.array(line, { minLength: 1, maxLength: 25 }).map((ls) => ({ text: ls.join(fc.sample(fc.constantFrom("\n", "\r\n"), 1)[0]) }));

const SAMPLE = `---
applications:
- name: hello
  memory: 256M
  instances: 2
  buildpacks: [node]
  command: bun server.ts
  env:
    GREETING: "hi there"
    NESTED: {a: 1}
  routes:
  - route: hello.skiff.localhost
  - route: api.skiff.localhost/v1
  services:
  - db
  health-check-type: http
  health-check-http-endpoint: /health
  timeout: 60
  script: |
    line one
    line two
`;
const enc = new TextEncoder();
const dec = new TextDecoder();
const mutatedSample = mutated(fc.constant(enc.encode(SAMPLE)), 10).map((b) => ({ text: dec.decode(b) }));

const deep = fc.tuple(fc.integer({ min: 1, max: 100_000 }), fc.constantFrom("[", "{a: ", "- ", "  ")).map(([n, open]) => {
  if (open === "- ") return { text: `applications:\n${Array.from({ length: Math.min(n, 200) }, (_, i) => " ".repeat(i) + "- x:").join("\n")}\n` };
  if (open === "  ") return { text: `applications:\n${Array.from({ length: Math.min(n, 200) }, (_, i) => " ".repeat(i + 1) + "k:").join("\n")}\n` };
  return { text: `applications: ${open.repeat(n)}1${(open === "[" ? "]" : "}").repeat(n)}` };
});

/** Scalars that survive being written and read back as the same string. */
const safeString = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => s.trim() === s && !/[\r\n]/.test(s));
const envKey = fc.oneof(fc.constantFrom("__proto__", "constructor", "toString", "PORT", "hasOwnProperty"), fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/));
const appArb: fc.Arbitrary<AppManifest> = fc.record(
  {
    name: safeString,
    instances: fc.nat({ max: 100 }),
    memory: fc.integer({ min: 1, max: 65536 }),
    command: safeString,
    env: fc.dictionary(envKey, fc.oneof(safeString, fc.constant("")), { maxKeys: 4 }),
    routes: fc.array(fc.stringMatching(/^[a-z0-9.-]{1,20}(\/[a-z0-9]{1,5})?$/), { maxLength: 3 }),
    services: fc.array(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), { maxLength: 3 }),
    health_check_type: fc.constantFrom("port", "http", "process") as fc.Arbitrary<"port" | "http" | "process">,
    timeout: fc.integer({ min: 1, max: 600 }),
  },
  { requiredKeys: ["name"] },
);

/** Writes apps as YAML the way a person would (double-quoted strings, block lists and maps). */
export function writeManifest(apps: AppManifest[]): string {
  const q = (s: string) => JSON.stringify(s);
  const out = ["applications:"];
  for (const a of apps) {
    out.push(`- name: ${q(a.name)}`);
    if (a.instances !== undefined) out.push(`  instances: ${a.instances}`);
    if (a.memory !== undefined) out.push(`  memory: ${a.memory}M`);
    if (a.command !== undefined) out.push(`  command: ${q(a.command)}`);
    if (a.env !== undefined) {
      out.push(Object.keys(a.env).length ? "  env:" : "  env: {}");
      for (const [k, v] of Object.entries(a.env)) out.push(`    ${k}: ${q(v)}`);
    }
    if (a.routes !== undefined) {
      out.push(a.routes.length ? "  routes:" : "  routes: []");
      for (const r of a.routes) out.push(`  - route: ${q(r)}`);
    }
    if (a.services !== undefined) {
      out.push(a.services.length ? "  services:" : "  services: []");
      for (const s of a.services) out.push(`  - ${q(s)}`);
    }
    if (a.health_check_type !== undefined) out.push(`  health-check-type: ${a.health_check_type}`);
    if (a.timeout !== undefined) out.push(`  timeout: ${a.timeout}`);
  }
  return out.join("\n") + "\n";
}

export const manifestInput: fc.Arbitrary<ManifestInput> = fc.oneof(
  tokenText,
  mutatedSample,
  deep,
  fc.array(appArb, { minLength: 1, maxLength: 3 }).map((apps) => ({ apps })),
);

const TYPES: Record<string, string> = { name: "string", path: "string", instances: "number", memory: "number", disk_quota: "number", command: "string", random_route: "boolean", no_route: "boolean", health_check_type: "string", health_check_http_endpoint: "string", timeout: "number" };

export function checkManifest(input: ManifestInput): void {
  const text = "text" in input ? input.text : writeManifest(input.apps);
  let parsed: ReturnType<typeof parseManifest>;
  try {
    parsed = timed(2000, `parsing a manifest of ${text.length} characters`, () => parseManifest(text));
  } catch (err) {
    if (err instanceof ManifestError) {
      if ("apps" in input) violated(`a manifest written from generated apps was refused: ${err.message}\n${text}`);
      return;
    }
    throw err;
  }
  const dirty = notJsonData(parsed.apps, 64, { undefinedFields: true });
  if (dirty) violated(`the manifest's apps are not plain data: ${dirty}`);
  for (const app of parsed.apps) {
    if (typeof app.name !== "string" || app.name === "") violated("an app without a name");
    for (const [k, t] of Object.entries(TYPES)) if ((app as unknown as Record<string, unknown>)[k] !== undefined && typeof (app as unknown as Record<string, unknown>)[k] !== t) violated(`${k} is a ${typeof (app as unknown as Record<string, unknown>)[k]}, not a ${t}`);
    for (const k of ["instances", "memory", "disk_quota", "timeout"] as const) if (app[k] !== undefined && !Number.isSafeInteger(app[k])) violated(`${k} ${app[k]} is not a whole number`);
    if (app.env) for (const [k, v] of Object.entries(app.env)) if (typeof v !== "string") violated(`env ${k} is not a string`);
    for (const list of [app.routes, app.services, app.buildpacks]) if (list && list.some((x) => typeof x !== "string")) violated("a list of names holds a non-string");
  }
  if ("apps" in input) {
    const want = JSON.stringify(input.apps.map((a) => ({ ...a })));
    const got = JSON.stringify(parsed.apps.map((a) => Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined))));
    const norm = (s: string) => JSON.stringify((JSON.parse(s) as Record<string, unknown>[]).map((a) => Object.fromEntries(Object.entries(a).sort(([x], [y]) => x.localeCompare(y)))));
    if (norm(want) !== norm(got)) violated(`written and read back, the apps changed:\n want ${norm(want)}\n got  ${norm(got)}\n${text}`);
  }
}

export const manifestTarget: FuzzTarget<ManifestInput> = {
  name: "manifest",
  describe: "cli/src/manifest.ts + yaml.ts on token-built, mutated, deeply nested and round-tripped manifests",
  arbitrary: manifestInput,
  check: checkManifest,
  save: (i) => ("text" in i ? { ext: "yml", bytes: enc.encode(i.text) } : jsonFile(i)),
  load: (name, bytes) => (name.endsWith(".yml") ? { text: dec.decode(bytes) } : readJson<ManifestInput>(bytes)),
};
