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
    expect(() => parseYaml("a: *ref\n")).toThrow(/anchors/);
    expect(() => parseYaml("\ta: 1\n")).toThrow(/tabs/);
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
  test("sizes", () => {
    expect(parseMegabytes("1G", "m")).toBe(1024);
    expect(parseMegabytes("256MB", "m")).toBe(256);
    expect(parseMegabytes(128, "m")).toBe(128);
    expect(() => parseMegabytes("1.5G", "m")).toThrow();
  });
});
