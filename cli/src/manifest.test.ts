import { describe, expect, test } from "bun:test";
import { parseManifest, ManifestError, parseMegabytes } from "./manifest.ts";
import { parseYaml, YamlError } from "./yaml.ts";

describe("yaml subset", () => {
  test("mappings, lists, scalars, flow lists, comments, block scalars", () => {
    const doc = parseYaml(`---
# comment
a: 1
b: "two # not a comment"
c: 'it''s'
d: [x, "y", 3]
e:
  - one
  - k: v
    k2: true
f: ~
g: |
  line1
  line2
h: {}
`);
    expect(doc).toEqual({ a: 1, b: "two # not a comment", c: "it's", d: ["x", "y", 3], e: ["one", { k: "v", k2: true }], f: null, g: "line1\nline2\n", h: {} });
  });
  test("errors name the line", () => {
    expect(() => parseYaml("a: 1\n  b: 2\n")).toThrow(YamlError);
    expect(() => parseYaml("a: 1\na: 2\n")).toThrow(/line 2: duplicate key/);
    expect(() => parseYaml("a: *ref\n")).toThrow(/line 1: unknown alias \*ref/);
    expect(() => parseYaml("\ta: 1\n")).toThrow(/tabs/);
  });
  test("anchors, aliases and merge keys, as cf's go-yaml reads them (issue 17)", () => {
    expect(parseYaml("base: &b {m: 1, n: 2}\nx:\n  <<: *b\n  n: 3\ny: *b\n")).toEqual({ base: { m: 1, n: 2 }, x: { m: 1, n: 3 }, y: { m: 1, n: 2 } });
  });
  test("an alias to a collection it is inside of, and a billion laughs, are refused (issue 17)", () => {
    expect(() => parseYaml("a: &x\n  b: *x\n")).toThrow(/line 2: the alias \*x refers to a list or mapping it is inside of/);
    const laughs = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 10; i++) laughs.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill("*" + String.fromCharCode(96 + i)).join(", ")}]`);
    const t0 = performance.now();
    expect(() => parseYaml(laughs.join("\n"))).toThrow(/aliases expand to too much/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
  test("tags stay plain data: no Buffers, Dates or Sets (issue 17)", () => {
    expect(parseYaml("a: !!binary aGVsbG8=\nb: 2001-12-14\nc: !!timestamp 2001-12-14\n")).toEqual({ a: "aGVsbG8=", b: "2001-12-14", c: "2001-12-14" });
    expect(() => parseYaml("? [a]\n: b\n")).toThrow(/line 1: a key must be a plain value/);
  });
});

describe("manifest", () => {
  const m = `applications:
- name: web
  path: ./app
  instances: 2
  memory: 512M
  disk_quota: 1G
  buildpacks: [bun]
  command: bun server.ts
  env:
    GREETING: hi
    COUNT: 3
  routes:
  - route: web.example.com/api
  health-check-type: http
  health-check-http-endpoint: /health
  timeout: 30
  services: [db]
`;
  test("parses every supported field", () => {
    const { apps, warnings } = parseManifest(m);
    expect(apps[0]).toMatchObject({ name: "web", path: "./app", instances: 2, memory: 512, disk_quota: 1024, buildpacks: ["bun"], command: "bun server.ts", env: { GREETING: "hi", COUNT: "3" }, routes: ["web.example.com/api"], health_check_type: "http", health_check_http_endpoint: "/health", timeout: 30, services: ["db"] });
    // issue 8: services are bound on push now, so they are no longer warned about
    expect(warnings).toEqual([]);
  });
  test("clear errors on bad manifests", () => {
    expect(() => parseManifest("applications: []")).toThrow(ManifestError);
    expect(() => parseManifest("applications:\n- path: .\n")).toThrow(/"name" is required/);
    expect(() => parseManifest("applications:\n- name: a\n  memory: lots\n")).toThrow(/256M/);
    expect(() => parseManifest("applications:\n- name: a\n  instances: -1\n")).toThrow(/instances/);
    expect(() => parseManifest("applications:\n- name: a\n  health-check-type: tcp\n")).toThrow(/port, http or process/);
    expect(() => parseManifest("applications:\n - name: a\n   bad indent\n")).toThrow(/not valid YAML/);
  });
  test("bad indentation names the line and says what to fix (issue 17)", () => {
    expect(() => parseManifest("applications:\n- name: a\n  memory: 256M\n    instances: 2\n")).toThrow(/manifest.yml is not valid YAML: line 4: bad indentation: this line is indented deeper than the key on line 3/);
    expect(() => parseManifest("applications:\n- name: a\n   memory: 256M\n  instances: 2\n")).toThrow(/line \d: /);
    expect(() => parseManifest("applications:\n- name: a\n  env:\n    A: 1\n    A: 2\n")).toThrow(/line 5: duplicate key/);
    expect(() => parseManifest('applications:\n- name: "a\n  memory: 1G\n')).toThrow(/not valid YAML: line \d+: a quote or bracket is not closed/);
  });
  test("anchors, merge keys, multi-line strings and --- documents as cf accepts them (issue 17)", () => {
    const { apps, warnings } = parseManifest(`---
defaults: &defaults
  memory: 256M
  instances: 2
  env: &env
    LOG: info
applications:
- name: api
  <<: *defaults
  instances: 3
  command: |
    bun run migrate &&
    exec bun server.ts
- name: jobs
  <<: *defaults
  no-route: yes
  env:
    <<: *env
    QUEUE: >-
      high
      low
...
---
applications:
- name: ignored
`);
    expect(apps.map((a) => [a.name, a.instances, a.memory])).toEqual([["api", 3, 256], ["jobs", 2, 256]]);
    expect(apps[0]!.command).toBe("bun run migrate &&\nexec bun server.ts\n");
    expect(apps[1]!.env).toEqual({ LOG: "info", QUEUE: "high low" });
    expect(apps[1]!.no_route).toBe(true);
    expect(warnings).toContain("manifest.yml holds 2 YAML documents; only the first is read (the others start at line 23)");
    expect(warnings.some((w) => /"defaults"/.test(w))).toBe(false);
  });
  test("processes: each type with its own command, instances, memory, disk and health check (issue 17)", () => {
    const { apps } = parseManifest(`applications:
- name: shop
  memory: 128M
  processes:
  - type: web
    instances: 2
    health-check-type: http
    health-check-http-endpoint: /health
  - type: worker
    command: bun worker.ts
    instances: 3
    memory: 64M
    disk_quota: 256M
    health-check-type: process
    timeout: 20
`);
    expect(apps[0]!.processes).toEqual([
      { type: "web", instances: 2, health_check_type: "http", health_check_http_endpoint: "/health" },
      { type: "worker", command: "bun worker.ts", instances: 3, memory: 64, disk_quota: 256, health_check_type: "process", timeout: 20 },
    ]);
    expect(apps[0]!.memory).toBe(128);
    expect(() => parseManifest("applications:\n- name: a\n  processes:\n  - command: x\n")).toThrow(/processes\[0\] needs a "type"/);
    expect(() => parseManifest("applications:\n- name: a\n  processes:\n  - type: w\n  - type: w\n")).toThrow(/"w" is listed twice/);
    expect(() => parseManifest("applications:\n- name: a\n  processes:\n  - type: w\n    instances: many\n")).toThrow(/process "w": "instances"/);
  });
  test("sizes", () => {
    expect(parseMegabytes("1G", "m")).toBe(1024);
    expect(parseMegabytes("256MB", "m")).toBe(256);
    expect(parseMegabytes(128, "m")).toBe(128);
    expect(() => parseMegabytes("1.5G", "m")).toThrow();
  });
});
