// Measures the three sandbox tools Debian ships (bubblewrap, crun, runc) doing the same job: a process
// as uid 40000 in its own mount, PID, IPC and UTS namespaces, /usr read-only, a writable app dir, a
// private /tmp, its own /proc and a minimal /dev. Start latency (`true` inside, spawn to exit) and what
// the tool's own processes cost while `sleep` runs inside (RSS and PSS). Issue 25 chose by these.
// Run (root): ./node_modules/.bin/bun bench/agent/sandbox-tools.ts [--runs N]

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync, chownSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { percentile } from "../lib/stats.ts";
import { comm, memoryKiB, processTree } from "../lib/process-table.ts";

const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 40;
const UID = 40000;
const work = mkdtempSync(join(tmpdir(), "skiff-sandbox-tools-"));
const app = join(work, "app");
mkdirSync(app);
chownSync(app, UID, UID);
chmodSync(work, 0o711); // the uid passes through to its app dir

const bwrapArgv = (cmd: string[]) => [
  "setpriv", `--reuid=${UID}`, `--regid=${UID}`, "--clear-groups",
  "bwrap", "--unshare-user", "--disable-userns", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent",
  "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
  "--bind", app, "/home/vcap/app", "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev", "--chdir", "/home/vcap/app", "--", ...cmd,
];

/** An OCI bundle for crun/runc: the same mounts, and the cgroup (memory + pids) they make themselves. */
function ociBundle(name: string, cmd: string[], cgroups = true): string {
  const bundle = join(work, name);
  const rootfs = join(bundle, "rootfs");
  if (!existsSync(rootfs)) {
    mkdirSync(rootfs, { recursive: true });
    for (const [l, t] of [["bin", "usr/bin"], ["lib", "usr/lib"], ["lib64", "usr/lib64"]]) symlinkSync(t!, join(rootfs, l!));
    for (const d of ["usr", "tmp", "proc", "dev", "home/vcap/app"]) mkdirSync(join(rootfs, d), { recursive: true });
  }
  const config = {
    ociVersion: "1.0.2",
    process: { terminal: false, user: { uid: UID, gid: UID }, args: cmd, env: ["PATH=/usr/bin:/bin"], cwd: "/home/vcap/app", noNewPrivileges: true, capabilities: {} },
    root: { path: "rootfs", readonly: true },
    hostname: "sandbox",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/usr", type: "bind", source: "/usr", options: ["rbind", "ro", "nosuid", "nodev"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "size=65536k"] },
      { destination: "/home/vcap/app", type: "bind", source: app, options: ["rbind", "rw", "nosuid", "nodev"] },
    ],
    linux: {
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
      ...(cgroups ? { cgroupsPath: `/skiff-sandbox-bench/${name}`, resources: { memory: { limit: 256 * 1024 * 1024 }, pids: { limit: 256 } } } : {}),
    },
  };
  writeFileSync(join(bundle, "config.json"), JSON.stringify(config));
  return bundle;
}

type Tool = { name: string; argv(cmd: string[], id: string): string[]; needs: string };
const tools: Tool[] = [
  { name: "bubblewrap 0.8 (as the uid, user namespace)", argv: (cmd) => bwrapArgv(cmd), needs: "unprivileged user namespaces (Debian 12 default); no root, no state dir, no daemon; cgroups are the caller's job" },
  { name: "crun 1.8 (root, cgroups v1 by crun)", argv: (cmd, id) => ["crun", "run", "--bundle", ociBundle(`crun-${id}`, cmd), `skiff-bench-${id}`], needs: "root (or rootless with a user namespace), a rootfs dir and bundle per instance, a state dir (/run/crun); makes the cgroups itself" },
  { name: "crun 1.8 (root, no cgroups: --cgroup-manager=disabled)", argv: (cmd, id) => ["crun", "--cgroup-manager=disabled", "run", "--bundle", ociBundle(`crunx-${id}`, cmd, false), `skiff-bench-x${id}`], needs: "as above, with the cgroups left to the caller (crun 1.8 refuses a hybrid v1/v2 host otherwise)" },
  { name: "runc 1.1 (root, cgroups v1 by runc)", argv: (cmd, id) => ["runc", "run", "--bundle", ociBundle(`runc-${id}`, cmd), `skiff-bench-${id}`], needs: "root (or rootless), a rootfs dir and bundle per instance, a state dir (/run/runc); makes the cgroups itself; a Go binary" },
];

const rows: string[] = [];
for (const tool of tools) {
  const ms: number[] = [];
  let failed = "";
  for (let k = 0; k < RUNS + 1; k++) {
    const argv = tool.argv(["/bin/true"], `t${k}`);
    const t0 = performance.now();
    const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
    const dt = performance.now() - t0;
    if (r.exitCode !== 0) {
      failed = r.stderr.toString().trim().slice(0, 200);
      break;
    }
    if (k > 0) ms.push(dt);
  }
  // the tool's own processes while a payload runs (everything in the tree but `sleep` and setpriv's exec)
  let mem = { rss: 0, pss: 0, procs: 0 };
  if (!failed) {
    const child = Bun.spawn(tool.argv(["/bin/sleep", "30"], "mem"), { stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(1000);
    for (const pid of processTree(child.pid)) {
      if (comm(pid) === "sleep") continue;
      const m = memoryKiB(pid);
      mem = { rss: mem.rss + m.rss, pss: mem.pss + m.pss, procs: mem.procs + 1 };
    }
    for (const id of ["skiff-bench-mem", "skiff-bench-xmem"]) for (const c of ["crun", "runc"]) Bun.spawnSync([c, "kill", id, "KILL"], { stderr: "ignore" });
    child.kill("SIGKILL");
    await child.exited;
    for (const id of ["skiff-bench-mem", "skiff-bench-xmem"]) for (const c of ["crun", "runc"]) Bun.spawnSync([c, "delete", "-f", id], { stderr: "ignore" });
  }
  const f = (n: number) => n.toFixed(1);
  rows.push(
    failed
      ? `| ${tool.name} | failed: ${failed} | | | | ${tool.needs} |`
      : `| ${tool.name} | ${f(percentile(ms, 50))} | ${f(percentile(ms, 99))} | ${mem.procs} | ${f(mem.rss / 1024)} / ${f(mem.pss / 1024)} | ${tool.needs} |`,
  );
}
// runc made its cgroups in every v1 hierarchy (and the unified one)
for (const v of readdirSync("/sys/fs/cgroup")) {
  const base = `/sys/fs/cgroup/${v}/skiff-sandbox-bench`;
  if (!existsSync(base)) continue;
  for (const d of readdirSync(base, { withFileTypes: true }).filter((e) => e.isDirectory())) Bun.spawnSync(["rmdir", join(base, d.name)]);
  Bun.spawnSync(["rmdir", base]);
}
rmSync(work, { recursive: true, force: true });
console.log(`${RUNS} runs each of \`true\` inside; memory with \`sleep\` inside, the tool's processes only\n`);
console.log("| tool | start p50 ms | start p99 ms | its processes | their RSS / PSS MiB | needs from the host |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const r of rows) console.log(r);
