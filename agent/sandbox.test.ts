// The sandbox is data (issue 25): these read what an instance's and a build's sandboxes hold, and
// the bwrap argv that makes them, without running anything.

import { describe, expect, test } from "bun:test";
import { bwrapArgv, bwrapOptions, ETC_ESSENTIALS, groupFile, IN_SANDBOX, instanceSandbox, passwdFile, signalFromSandboxStatus, stagingSandbox, type SandboxHost, type SandboxMount } from "./sandbox.ts";

const host: SandboxHost = {
  bwrap: "/usr/bin/bwrap",
  systemDirs: ["/usr"],
  systemLinks: [
    { dest: "/bin", target: "usr/bin" },
    { dest: "/lib", target: "usr/lib" },
  ],
  extraReadOnly: ["/opt/node"],
  bunPath: "/srv/skiff/node_modules/bun/bin/bun.exe",
};

const spec = {
  id: "3f2a",
  appDir: "/var/skiff/agent/instances/3f2a/app",
  tmp: { dir: "/var/skiff/agent/instances/3f2a/tmp" },
  shmBytes: 64 << 20,
  etcDir: "/var/skiff/agent/instances/3f2a.etc",
  argv: ["/bin/sh", "-c", "exec bun run start"],
};

/** Every host path the sandbox can write through (its writable binds). */
const writable = (mounts: SandboxMount[]) => mounts.filter((m) => m.type === "bind").map((m) => (m.type === "bind" ? `${m.source} -> ${m.dest}` : ""));
/** Every host path it sees at all. */
const sources = (mounts: SandboxMount[]) => mounts.flatMap((m) => (m.type === "bind" || m.type === "ro-bind" ? [m.source] : []));

describe("an instance's sandbox (issue 25)", () => {
  const box = instanceSandbox(host, spec);

  test("writes only its app dir and its /tmp", () => {
    expect(writable(box.mounts)).toEqual([`${spec.tmp.dir} -> /tmp`, `${spec.appDir} -> /home/vcap/app`]);
    // then / and /dev are made read-only: nothing else on the root tmpfs can be created
    expect(box.mounts.slice(-2)).toEqual([
      { type: "remount-ro", dest: "/dev" },
      { type: "remount-ro", dest: "/" },
    ]);
  });

  test("sees of the host only /usr, the /etc essentials, its own files and the Bun binary (never its directory)", () => {
    const own = ["passwd", "group", "hostname"].map((f) => `${spec.etcDir}/${f}`);
    expect(sources(box.mounts)).toEqual(["/usr", "/opt/node", ...ETC_ESSENTIALS, ...own, host.bunPath, spec.tmp.dir, spec.appDir]);
    expect(box.mounts).toContainEqual({ type: "ro-bind", source: `${spec.etcDir}/hostname`, dest: "/etc/hostname" });
    for (const secret of ["/etc/shadow", "/etc/machine-id", "/root", "/home", "/run", "/var", "/sys", "/srv/skiff"]) expect(sources(box.mounts)).not.toContain(secret);
    expect(box.mounts).toContainEqual({ type: "ro-bind", source: host.bunPath, dest: "/opt/skiff/bin/bun" });
    // only the etc essentials and the operator's extra paths are optional: a missing /usr must fail
    expect(box.mounts.filter((m) => m.type === "ro-bind" && m.optional).length).toBe(ETC_ESSENTIALS.length + 1);
  });

  test("its own /proc, a minimal /dev and a /dev/shm of its size; merged /usr links as links", () => {
    expect(box.mounts).toContainEqual({ type: "proc", dest: "/proc" });
    expect(box.mounts).toContainEqual({ type: "dev", dest: "/dev" });
    expect(box.mounts).toContainEqual({ type: "tmpfs", dest: "/dev/shm", sizeBytes: 64 << 20 });
    expect(box.mounts).toContainEqual({ type: "symlink", target: "usr/bin", dest: "/bin" });
    expect(box.cwd).toBe("/home/vcap/app");
  });

  test("without a disk volume, /tmp is a tmpfs of the disk quota's size", () => {
    const b = instanceSandbox(host, { ...spec, tmp: { sizeBytes: 1 << 30 } });
    expect(b.mounts).toContainEqual({ type: "tmpfs", dest: "/tmp", sizeBytes: 1 << 30 });
    expect(writable(b.mounts)).toEqual([`${spec.appDir} -> /home/vcap/app`]);
  });

  test("bwrap argv: its own user (nested: no more) without capabilities, PID, IPC, UTS and cgroup namespaces, the host's network", () => {
    const argv = bwrapArgv(box);
    expect(argv.slice(0, 11)).toEqual(["--unshare-user", "--disable-userns", "--cap-drop", "ALL", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "3f2a", "--ro-bind"]);
    expect(argv).not.toContain("--unshare-net");
    expect(argv).not.toContain("--share-net");
    expect(argv).not.toContain("--unshare-all");
    // the mounts in order, then the command after "--"
    const joined = argv.join(" ");
    expect(joined).toContain("--ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --ro-bind-try /opt/node /opt/node --ro-bind-try /etc/alternatives /etc/alternatives");
    expect(joined).toContain(`--ro-bind ${host.bunPath} /opt/skiff/bin/bun --symlink bun /opt/skiff/bin/bunx --proc /proc --dev /dev --size 67108864 --tmpfs /dev/shm --bind ${spec.tmp.dir} /tmp --bind ${spec.appDir} /home/vcap/app --remount-ro /dev --remount-ro /`);
    expect(argv.slice(-6)).toEqual(["--chdir", "/home/vcap/app", "--", "/bin/sh", "-c", "exec bun run start"]);
    // the options alone go to bwrap through a descriptor (sandbox-host.ts sandboxLaunch): the command stays on its argv
    expect(bwrapOptions(box)).toEqual(argv.slice(0, -4));
  });
});

describe("a staging task's sandbox (issue 25)", () => {
  const box = stagingSandbox(host, { taskId: "t/1", appDir: "/d/staging/t1/app", scratchDir: "/d/staging/t1/home", shmBytes: 1 << 20, etcDir: "/d/staging/t1.etc", argv: ["npm", "install"] });
  test("the app it builds is its only output; its scratch space is /tmp", () => {
    expect(writable(box.mounts)).toEqual(["/d/staging/t1/home -> /tmp", "/d/staging/t1/app -> /home/vcap/app"]);
    expect(box.hostname).toBe("staging-t-1");
    expect(box.cwd).toBe(IN_SANDBOX.app);
    expect(bwrapArgv(box).slice(-3)).toEqual(["--", "npm", "install"]);
  });
});

test("its /etc/passwd names the app's uid vcap and no one of the host", () => {
  expect(passwdFile(40123, 40123)).toBe("root:x:0:0:root:/root:/usr/sbin/nologin\nvcap:x:40123:40123:vcap:/home/vcap/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
  expect(groupFile(40123)).toBe("root:x:0:\nvcap:x:40123:\nnogroup:x:65534:\n");
});

test("bwrap's status 128+N is the app killed by signal N", () => {
  expect(signalFromSandboxStatus(137)).toBe(9);
  expect(signalFromSandboxStatus(143)).toBe(15);
  expect(signalFromSandboxStatus(1)).toBeUndefined();
  expect(signalFromSandboxStatus(128)).toBeUndefined();
  expect(signalFromSandboxStatus(null)).toBeUndefined();
});
