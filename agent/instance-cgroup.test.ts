// The limits each cgroup version gets (issue 25), against fake hierarchies in a temporary directory
// (this host has one version; both must be right): memory, pids and CPU shares proportional to memory.

import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuSharesFor, cpuWeightOf, describeLimits, openInstanceCgroups } from "./instance-cgroup.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fakeMount(files: Record<string, string>): string {
  const mount = mkdtempSync(join(tmpdir(), "skiff-cgroup-"));
  dirs.push(mount);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(mount, path, ".."), { recursive: true });
    writeFileSync(join(mount, path), text);
  }
  return mount;
}

const read = (path: string) => readFileSync(path, "utf8");

describe("cgroup v1", () => {
  // v1: one hierarchy per controller; the agent's own memory cgroup is nested (a container's)
  const selfCgroup = "9:name=systemd:/\n8:pids:/\n4:memory:/box/7\n2:cpu,cpuacct:/\n";
  // a root cgroup has cgroup.procs but no limit files (pids.max is only below it)
  const v1 = () => fakeMount({ "memory/cgroup.procs": "", "memory/box/7/memory.limit_in_bytes": "max", "pids/cgroup.procs": "", "cpu,cpuacct/cgroup.procs": "" });

  test("memory (and memsw), pids and cpu.shares, each under the agent's own cgroup of that hierarchy", () => {
    const mount = v1();
    const cg = openInstanceCgroups("a1", { mount, selfCgroup })!;
    expect(cg.version).toBe(1);
    expect(cg.controllers).toEqual(["memory", "pids", "cpu"]);
    const one = cg.create("i1", { memoryBytes: 256 << 20, pids: 1024, cpuShares: cpuSharesFor(256) });
    expect(one.controllers).toEqual(["memory", "pids", "cpu"]);
    expect(read(join(mount, "memory/box/7/skiff-a1/i1/memory.limit_in_bytes"))).toBe(String(256 << 20));
    expect(read(join(mount, "memory/box/7/skiff-a1/i1/memory.memsw.limit_in_bytes"))).toBe(String(256 << 20));
    expect(read(join(mount, "pids/skiff-a1/i1/pids.max"))).toBe("1024");
    expect(read(join(mount, "cpu,cpuacct/skiff-a1/i1/cpu.shares"))).toBe("256");
  });

  test("a process is moved into every hierarchy; the cap's refusals are counted", async () => {
    const mount = v1();
    const one = openInstanceCgroups("a1", { mount, selfCgroup })!.create("i1", { pids: 64 });
    await one.addProcess(4242);
    for (const d of ["memory/box/7", "pids", "cpu,cpuacct"]) expect(read(join(mount, d, "skiff-a1/i1/cgroup.procs"))).toBe("4242");
    writeFileSync(join(mount, "pids/skiff-a1/i1/pids.events"), "max 17\n");
    expect(one.pidsRefused()).toBe(17);
    expect(one.controllers).toEqual(["pids"]); // no memory or CPU limit asked for
  });

  test("a hierarchy that is missing is a limit not enforced, and said so", () => {
    const mount = fakeMount({ "memory/cgroup.procs": "", "pids/cgroup.procs": "" });
    // pids is mounted, but this process is in no pids hierarchy: not used
    const cg = openInstanceCgroups("a1", { mount, selfCgroup: "4:memory:/\n" })!;
    expect(cg.controllers).toEqual(["memory"]);
    expect(describeLimits(cg).missing.map((m) => m.split(" (")[0])).toEqual(["process cap", "CPU shares"]);
  });
});

describe("cgroup v2", () => {
  const v2 = (controllers = "cpuset cpu io memory hugetlb pids") =>
    fakeMount({ "cgroup.controllers": controllers, "agent.service/cgroup.controllers": controllers, "agent.service/cgroup.subtree_control": "" });

  test("memory.max without swap, pids.max and cpu.weight (1024 shares = weight 100)", () => {
    const mount = v2();
    const cg = openInstanceCgroups("a2", { mount, selfCgroup: "0::/agent.service\n" })!;
    expect(cg.version).toBe(2);
    expect(cg.controllers).toEqual(["memory", "pids", "cpu"]);
    const one = cg.create("i1", { memoryBytes: 512 << 20, pids: 1024, cpuShares: cpuSharesFor(512) });
    const dir = join(mount, "agent.service/skiff-a2/i1");
    expect(read(join(dir, "memory.max"))).toBe(String(512 << 20));
    expect(read(join(dir, "memory.swap.max"))).toBe("0");
    expect(read(join(dir, "pids.max"))).toBe("1024");
    expect(read(join(dir, "cpu.weight"))).toBe("50");
    writeFileSync(join(dir, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    expect(one.oomKilled()).toBe(true);
  });

  test("controllers the host does not offer are not enforced", () => {
    const mount = v2("memory");
    const cg = openInstanceCgroups("a2", { mount, selfCgroup: "0::/agent.service\n" })!;
    expect(cg.controllers).toEqual(["memory"]);
    cg.create("i1", { memoryBytes: 1 << 20, pids: 10, cpuShares: 100 });
    expect(existsSync(join(mount, "agent.service/skiff-a2/i1/pids.max"))).toBe(false);
  });

  test("none at all: the agent says so", () => {
    expect(openInstanceCgroups("a3", { mount: fakeMount({}), selfCgroup: "" })).toBeUndefined();
    expect(describeLimits(undefined)).toMatchObject({ summary: "none (no writable cgroup v1 or v2)" });
    expect(describeLimits(undefined).missing).toHaveLength(3);
  });
});

test("CPU shares are proportional to memory, as Cloud Foundry gives them", () => {
  expect(cpuSharesFor(1024)).toBe(1024); // what any other process weighs
  expect(cpuSharesFor(128)).toBe(128);
  expect(cpuSharesFor(1)).toBe(2); // the kernel's minimum
  expect(cpuWeightOf(1024)).toBe(100);
  expect(cpuWeightOf(2)).toBe(1);
  expect(cpuWeightOf(262_144)).toBe(10_000);
});
