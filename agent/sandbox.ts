// The sandbox of an instance or a staging task, as data, and the bubblewrap argv that builds it. Pure:
// one function turns an instance's spec into its sandbox (instanceSandbox, stagingSandbox), another
// turns a sandbox into bwrap's argv (bwrapArgv); the runner only executes the result.
//
// Inside: its own user (nested, so it can make no more), mount, PID, IPC, UTS and cgroup namespaces;
// `/` an empty read-only tmpfs holding only the host's /usr (and what the host links into it), a few
// /etc essentials, the Bun binary, the app at /home/vcap/app (writable), a private /tmp, a sized
// /dev/shm, a minimal /dev and its own /proc. The host's network stays shared (the router reaches the
// instance on its port), and the instance keeps its own uid.

/** Where things are inside every sandbox (Cloud Foundry's layout: the app in /home/vcap/app). */
export const IN_SANDBOX = {
  app: "/home/vcap/app",
  tmp: "/tmp",
  shm: "/dev/shm",
  /** the agent's Bun (bun, bunx), first on PATH */
  bin: "/opt/skiff/bin",
  path: "/opt/skiff/bin:/usr/local/bin:/usr/bin:/bin",
} as const;

/**
 * The host's /etc files a process needs to resolve names, verify TLS, find shared libraries, tell the
 * time and run Debian's alternatives (/usr/bin/awk → /etc/alternatives/awk). Nothing else of /etc:
 * no shadow, no machine-id, no ssh keys, no sudoers. /etc/passwd, /etc/group and /etc/hostname are
 * made per sandbox (SANDBOX_ETC_FILES, written by sandbox-host.ts writeSandboxEtc).
 */
export const ETC_ESSENTIALS = [
  "/etc/alternatives",
  "/etc/ca-certificates.conf",
  "/etc/gai.conf",
  "/etc/host.conf",
  "/etc/hosts",
  "/etc/ld.so.cache",
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/localtime",
  "/etc/mime.types",
  "/etc/nsswitch.conf",
  "/etc/os-release",
  "/etc/protocols",
  "/etc/resolv.conf",
  "/etc/services",
  "/etc/ssl/certs",
  "/etc/ssl/openssl.cnf",
  "/etc/timezone",
] as const;

/** The /etc files made for each sandbox, in its etc directory on the host. */
export const SANDBOX_ETC_FILES = ["passwd", "group", "hostname"] as const;

/** One entry of a sandbox's file system, in the order they are made (like an OCI config's mounts). */
export type SandboxMount =
  /** a host path, read-only, at `dest`; `optional`: skipped when the host has no such path */
  | { type: "ro-bind"; source: string; dest: string; optional?: boolean }
  /** a host path, writable by the sandbox's uid (still only where the file modes allow) */
  | { type: "bind"; source: string; dest: string }
  | { type: "tmpfs"; dest: string; sizeBytes: number }
  | { type: "symlink"; target: string; dest: string }
  | { type: "proc"; dest: string }
  | { type: "dev"; dest: string }
  /** makes an earlier mount read-only (the root tmpfs and /dev once everything is in place) */
  | { type: "remount-ro"; dest: string };

export interface Sandbox {
  hostname: string;
  mounts: SandboxMount[];
  /** working directory inside */
  cwd: string;
  /** the command inside (argv[0] as the sandbox sees it) */
  argv: string[];
}

/** What the host gives every sandbox; read once when the agent starts (sandbox-host.ts). */
export interface SandboxHost {
  /** the bwrap binary */
  bwrap: string;
  /** host directories bound read-only at the same path: /usr, and /bin, /lib… where they are real directories */
  systemDirs: string[];
  /** top-level links into /usr (merged /usr: /bin → usr/bin), made as the same links inside */
  systemLinks: { dest: string; target: string }[];
  /** more read-only host paths an operator names (SKIFF_AGENT_SANDBOX_BIND: a runtime in /opt…) */
  extraReadOnly: string[];
  /** the Bun binary the agent runs on, bound read-only as IN_SANDBOX.bin/bun */
  bunPath: string;
}

export interface InstanceSandboxSpec {
  /** the instance id: its hostname */
  id: string;
  /** host path of its app directory → /home/vcap/app, writable */
  appDir: string;
  /** its /tmp: a host directory (on its disk-quota volume), or a tmpfs of this size */
  tmp: { dir: string } | { sizeBytes: number };
  /** /dev/shm's size */
  shmBytes: number;
  /** the host directory of its generated /etc files (SANDBOX_ETC_FILES) */
  etcDir: string;
  /** the command inside */
  argv: string[];
}

export interface StagingSandboxSpec {
  taskId: string;
  /** the app being built (it becomes the droplet's app/) → /home/vcap/app, writable */
  appDir: string;
  /** the build's home and scratch space (npm's cache): → /tmp, writable, not packed */
  scratchDir: string;
  shmBytes: number;
  etcDir: string;
  argv: string[];
}

/** The read-only system every sandbox starts from: /usr and its links, /etc essentials, Bun. */
function systemMounts(host: SandboxHost, etcDir: string): SandboxMount[] {
  return [
    ...host.systemDirs.map((d): SandboxMount => ({ type: "ro-bind", source: d, dest: d })),
    ...host.systemLinks.map((l): SandboxMount => ({ type: "symlink", target: l.target, dest: l.dest })),
    ...host.extraReadOnly.map((d): SandboxMount => ({ type: "ro-bind", source: d, dest: d, optional: true })),
    ...ETC_ESSENTIALS.map((f): SandboxMount => ({ type: "ro-bind", source: f, dest: f, optional: true })),
    ...SANDBOX_ETC_FILES.map((f): SandboxMount => ({ type: "ro-bind", source: `${etcDir}/${f}`, dest: `/etc/${f}` })),
    { type: "ro-bind", source: host.bunPath, dest: `${IN_SANDBOX.bin}/bun` },
    { type: "symlink", target: "bun", dest: `${IN_SANDBOX.bin}/bunx` },
    { type: "proc", dest: "/proc" },
    { type: "dev", dest: "/dev" },
  ];
}

/** The end of every sandbox: nothing but the binds above stays writable. */
const sealed: SandboxMount[] = [
  { type: "remount-ro", dest: "/dev" },
  { type: "remount-ro", dest: "/" },
];

export function instanceSandbox(host: SandboxHost, spec: InstanceSandboxSpec): Sandbox {
  return {
    hostname: hostnameOf(spec.id),
    mounts: [
      ...systemMounts(host, spec.etcDir),
      { type: "tmpfs", dest: IN_SANDBOX.shm, sizeBytes: spec.shmBytes },
      "dir" in spec.tmp
        ? { type: "bind", source: spec.tmp.dir, dest: IN_SANDBOX.tmp }
        : { type: "tmpfs", dest: IN_SANDBOX.tmp, sizeBytes: spec.tmp.sizeBytes },
      { type: "bind", source: spec.appDir, dest: IN_SANDBOX.app },
      ...sealed,
    ],
    cwd: IN_SANDBOX.app,
    argv: spec.argv,
  };
}

/** A staging task's build command: the app it builds is its only output; its scratch space is /tmp. */
export function stagingSandbox(host: SandboxHost, spec: StagingSandboxSpec): Sandbox {
  return {
    hostname: hostnameOf(`staging-${spec.taskId}`),
    mounts: [
      ...systemMounts(host, spec.etcDir),
      { type: "tmpfs", dest: IN_SANDBOX.shm, sizeBytes: spec.shmBytes },
      { type: "bind", source: spec.scratchDir, dest: IN_SANDBOX.tmp },
      { type: "bind", source: spec.appDir, dest: IN_SANDBOX.app },
      ...sealed,
    ],
    cwd: IN_SANDBOX.app,
    argv: spec.argv,
  };
}

/** A host name is at most 63 letters, digits and dashes. */
export function hostnameOf(id: string): string {
  return id.replace(/[^A-Za-z0-9-]/g, "-").slice(0, 63) || "sandbox";
}

/** bubblewrap's argv for `sandbox` (everything after the bwrap binary itself). */
export function bwrapArgv(sandbox: Sandbox): string[] {
  return [...bwrapOptions(sandbox), "--", ...sandbox.argv];
}

/**
 * Everything before the command: what the agent hands bwrap through a file descriptor (`--args`),
 * so that inside, /proc/1/cmdline shows the command, not the host's paths of the sandbox's files.
 */
export function bwrapOptions(sandbox: Sandbox): string[] {
  const out = [
    // a user namespace is what lets an unprivileged uid make the others; --disable-userns nests a
    // second one that can make no more, so the app cannot gain capabilities in a namespace of its own
    "--unshare-user",
    "--disable-userns",
    // no capability even in its own namespaces (an agent that runs instances as root gives them
    // every one otherwise; an unprivileged uid gets none anyway)
    "--cap-drop",
    "ALL",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    // /proc/self/cgroup shows "/" rather than the agent's cgroup names
    "--unshare-cgroup-try",
    "--hostname",
    sandbox.hostname,
  ];
  for (const m of sandbox.mounts) {
    switch (m.type) {
      case "ro-bind":
        out.push(m.optional ? "--ro-bind-try" : "--ro-bind", m.source, m.dest);
        break;
      case "bind":
        out.push("--bind", m.source, m.dest);
        break;
      case "tmpfs":
        out.push("--size", String(Math.max(4096, Math.floor(m.sizeBytes))), "--tmpfs", m.dest);
        break;
      case "symlink":
        out.push("--symlink", m.target, m.dest);
        break;
      case "proc":
        out.push("--proc", m.dest);
        break;
      case "dev":
        out.push("--dev", m.dest);
        break;
      case "remount-ro":
        out.push("--remount-ro", m.dest);
        break;
    }
  }
  out.push("--chdir", sandbox.cwd);
  return out;
}

/** The sandbox's /etc/passwd: root, the app's user as `vcap` (Cloud Foundry's name), nobody. */
export function passwdFile(uid: number, gid: number): string {
  const lines = ["root:x:0:0:root:/root:/usr/sbin/nologin"];
  if (uid !== 0) lines.push(`vcap:x:${uid}:${gid}:vcap:${IN_SANDBOX.app}:/bin/sh`);
  if (uid !== 65534) lines.push("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin");
  return lines.join("\n") + "\n";
}

export function groupFile(gid: number): string {
  const lines = ["root:x:0:"];
  if (gid !== 0) lines.push(`vcap:x:${gid}:`);
  if (gid !== 65534) lines.push("nogroup:x:65534:");
  return lines.join("\n") + "\n";
}

/**
 * The exit status of a sandboxed command: bwrap reports a command killed by signal N as status
 * 128 + N, as a shell does. Returns the signal number, or undefined for a plain exit.
 */
export function signalFromSandboxStatus(status: number | null): number | undefined {
  return status !== null && status > 128 && status <= 128 + 64 ? status - 128 : undefined;
}
