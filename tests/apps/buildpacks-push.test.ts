// Issue 17, with real processes: the python and binary samples push and answer 200 through the
// router (a python dependency installed from the app's vendor/ with no package index; a clear error
// when pip cannot reach one); cf's push habits: push NAME -p DIR, a failed push leaves nothing behind,
// and manifests with anchors, merge keys, processes: and --- documents, or bad indentation.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../../scripts/local-cluster.ts";
import { eventually } from "../support/ports.ts";
import { appGuid, instancesOf, startAppsCluster, type AppsCluster } from "./support.ts";

let c: AppsCluster;
let work: string;

beforeAll(async () => {
  c = await startAppsCluster("apps-bp");
  work = mkdtempSync(join(tmpdir(), "skiff-apps-bp-work-"));
}, 90_000);

afterAll(async () => {
  await c?.stop();
  rmSync(work, { recursive: true, force: true });
}, 60_000);

const ok200 = (app: string) =>
  eventually(async () => {
    const r = await c.viaRouter(app);
    return r.status === 200 ? r.text() : undefined;
  }, 30_000, `${app} answering 200 through the router`);

/** A copy of a sample to change without touching the repository. */
function copyOf(sample: string, name: string): string {
  const dir = join(work, name);
  cpSync(join(repoRoot, "examples", sample), dir, { recursive: true });
  return dir;
}

/** A pure-Python wheel, made by hand (a zip with the dist-info pip reads): a dependency no index is needed for. */
function writeWheel(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const script = `
import base64, hashlib, sys, zipfile
files = {
  "greeting/__init__.py": "def hello():\\n    return 'hello from a vendored wheel'\\n",
  "greeting-1.0.dist-info/METADATA": "Metadata-Version: 2.1\\nName: greeting\\nVersion: 1.0\\n",
  "greeting-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\\nGenerator: skiff-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = []
with zipfile.ZipFile(sys.argv[1] + "/greeting-1.0-py3-none-any.whl", "w") as z:
  for name, text in files.items():
    data = text.encode()
    z.writestr(name, data)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{name},sha256={digest},{len(data)}")
  record.append("greeting-1.0.dist-info/RECORD,,")
  z.writestr("greeting-1.0.dist-info/RECORD", "\\n".join(record) + "\\n")
`;
  const r = Bun.spawnSync(["/usr/bin/python3", "-c", script, dir], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
}

describe("buildpacks (issue 17)", () => {
  test("examples/python pushes with the python buildpack, in a venv of its own, and serves", async () => {
    const out = await c.must("push", "py-hello", "-p", join(repoRoot, "examples/python"));
    expect(out).toMatch(/buildpack: python/);
    expect(await ok200("py-hello")).toMatch(/^hello from python 3\.\d+\.\d+ \(instance 0, venv \/home\/vcap\/app\/\.venv\)$/m);
  }, 120_000);

  test("a dependency in requirements.txt is installed from the app's vendor/ without any package index", async () => {
    const dir = copyOf("python", "py-vendored");
    writeWheel(join(dir, "vendor"));
    writeFileSync(join(dir, "requirements.txt"), "greeting==1.0\n");
    const out = await c.must("push", "py-vendored", "-p", dir);
    expect(out).toContain("installing dependencies from vendor/ only (no package index)");
    expect(await ok200("py-vendored")).toContain("; hello from a vendored wheel");
  }, 120_000);

  test("a requirement pip cannot fetch fails staging with what to do", async () => {
    const dir = copyOf("python", "py-unreachable");
    writeFileSync(join(dir, "requirements.txt"), "flask==2.2.2\n");
    // no index the agent reaches (this machine has none; and pip gets one that refuses at once)
    const r = await c.cli("push", "py-unreachable", "-p", dir, "--no-wait");
    expect(r.code, r.output).toBe(0);
    await c.must("set-env", "py-unreachable", "PIP_INDEX_URL", "http://127.0.0.1:9/simple");
    const again = await c.cli("push", "py-unreachable", "-p", dir);
    expect(again.code).toBe(1);
    expect(again.output).toMatch(/Staging failed: pip install failed \(exit status 1\): see pip's lines above\. If the agents cannot reach the package index, vendor the dependencies \(pip download -r requirements\.txt -d vendor\)/);
  }, 180_000);

  test("examples/binary, built with cc, pushes with the binary buildpack and serves", async () => {
    const dir = copyOf("binary", "hello-c");
    const cc = Bun.spawnSync(["cc", "-O2", "-static", "-o", join(dir, "server"), join(dir, "server.c")], { stderr: "pipe" });
    expect(cc.exitCode, cc.stderr.toString()).toBe(0);
    const out = await c.must("push", "hello-c", "-p", dir);
    expect(out).toMatch(/buildpack: binary/);
    expect(await ok200("hello-c")).toMatch(/^hello from a binary \(instance 0, pid \d+\)$/m);
  }, 120_000);

  test("the binary sample pushed without building says what to do", async () => {
    const r = await c.cli("push", "hello-c-unbuilt", "-p", join(repoRoot, "examples/binary"));
    expect(r.code).toBe(1);
    expect(r.output).toContain("the start command runs ./server, which is not in the app: build it into the folder you push");
  }, 60_000);
});

describe("cf's push habits (issue 17)", () => {
  const apps = async () => (JSON.parse(await c.must("apps", "--json")) as { name: string }[]).map((a) => a.name);
  const routes = async () => (JSON.parse(await c.must("routes", "--json")) as { url: string }[]).map((r) => r.url);

  test("push NAME -p DIR with a folder that is not there fails before creating anything", async () => {
    const r = await c.cli("push", "myapp", "-p", join(work, "nope"));
    expect(r.code).toBe(1);
    expect(r.output).toContain("is not a folder: pass the app's folder with -p PATH");
    expect(await apps()).not.toContain("myapp");
  }, 60_000);

  test("a push that fails before its upload (a service that does not exist) deletes the app and route it made, and says so", async () => {
    const dir = copyOf("python", "half-made");
    writeFileSync(join(dir, "manifest.yml"), "applications:\n- name: half-made\n  services: [no-such-db]\n");
    const before = await routes();
    const r = await c.cli("push", "half-made", "-p", dir);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/removed what it had created: app half-made, route half-made\.skiff\.localhost/);
    expect(await apps()).not.toContain("half-made");
    expect(await routes()).toEqual(before);
  }, 60_000);

  test("a manifest with anchors, merge keys, processes: and a second --- document, as cf reads it", async () => {
    const dir = copyOf("workers", "manifested");
    writeFileSync(join(dir, "manifest.yml"), `---
defaults: &defaults
  memory: 128M
  disk_quota: 512M
applications:
- name: manifested
  <<: *defaults
  env:
    NOTE: |
      two
      lines
  processes:
  - type: worker
    instances: 2
    memory: 64M
  - type: clock
    command: bun worker.ts
    instances: 1
---
applications:
- name: not-read
`);
    const out = await c.must("push", "manifested", "-p", dir);
    expect(out).toContain("holds 2 YAML documents; only the first is read");
    const guid = await appGuid(c, "manifested");
    const detail = JSON.parse(await c.must("app", "manifested", "--json"));
    expect(detail.processes.map((p: any) => [p.type, p.instances, p.memory_in_mb])).toEqual([["web", 1, 128], ["clock", 1, 128], ["worker", 2, 64]]);
    await eventually(() => (instancesOf(c, guid, "worker").length === 2 && instancesOf(c, guid, "clock").length === 1 ? true : undefined), 30_000, "2 workers and a clock");
    expect(JSON.parse(await c.must("env", "manifested", "--json"))).toEqual({ NOTE: "two\nlines\n" });
    expect(await apps()).not.toContain("not-read");
  }, 120_000);

  test("a manifest with bad indentation is refused with its line, before anything is made", async () => {
    const dir = copyOf("python", "bad-indent");
    writeFileSync(join(dir, "manifest.yml"), "applications:\n- name: bad-indent\n  memory: 256M\n    instances: 2\n");
    const r = await c.cli("push", "bad-indent", "-p", dir);
    expect(r.code).toBe(1);
    expect(r.output).toContain("manifest.yml is not valid YAML: line 4: bad indentation");
    expect(await apps()).not.toContain("bad-indent");
  }, 60_000);
});
