// What this host gives the sandboxes, read once when the agent starts: where bwrap is, how the root
// file system is laid out (merged /usr or not), and whether a sandbox really starts here (unprivileged
// user namespaces can be switched off by sysctl or an LSM): one probe sandbox, made exactly as an
// instance's is, runs the agent's Bun inside.

import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bwrapOptions, groupFile, hostnameOf, IN_SANDBOX, instanceSandbox, passwdFile, SANDBOX_ETC_FILES, type Sandbox, type SandboxHost } from "./sandbox.ts";

/** The file descriptor a sandbox's options reach bwrap on (the fourth of its stdio). */
export const ARGS_FD = 3;

/**
 * What to spawn for `sandbox`: bwrap reads its options from a file the agent opened (`--args 3`) and
 * closes it before anything runs inside, so inside, /proc/1/cmdline (bwrap, the sandbox's PID 1) shows
 * only the command. The file is root's and removed at once: the open descriptor is what bwrap reads.
 * Close `fd` once the process is spawned.
 */
export function sandboxLaunch(bwrap: string, sandbox: Sandbox, argsFile: string): { argv: string[]; fd: number } {
  rmSync(argsFile, { force: true });
  writeFileSync(argsFile, bwrapOptions(sandbox).join("\0") + "\0", { flag: "wx", mode: 0o600 });
  const fd = openSync(argsFile, "r");
  rmSync(argsFile);
  return { argv: [bwrap, "--args", String(ARGS_FD), "--", ...sandbox.argv], fd };
}

/** Top-level directories that hold programs and libraries: bound read-only, or made as the same links. */
const SYSTEM_ROOTS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

export function findBwrap(path = process.env.PATH ?? ""): string | undefined {
  for (const dir of [...path.split(":").filter(Boolean), "/usr/bin", "/usr/local/bin"]) {
    const p = join(dir, "bwrap");
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** The host's system directories and the links into them (Debian 12: /bin → usr/bin, /lib → usr/lib…). */
export function readHostLayout(roots: readonly string[] = SYSTEM_ROOTS): Pick<SandboxHost, "systemDirs" | "systemLinks"> {
  const systemDirs: string[] = [];
  const systemLinks: SandboxHost["systemLinks"] = [];
  for (const p of roots) {
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isSymbolicLink()) systemLinks.push({ dest: p, target: readlinkSync(p) });
    else if (st.isDirectory()) systemDirs.push(p);
  }
  return { systemDirs, systemLinks };
}

/** Writes a sandbox's /etc/passwd, /etc/group and /etc/hostname into `dir` (root's, readable: bwrap runs as the instance's uid). */
export function writeSandboxEtc(dir: string, uid: number, gid: number, hostname: string): string {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const files: Record<(typeof SANDBOX_ETC_FILES)[number], string> = { passwd: passwdFile(uid, gid), group: groupFile(gid), hostname: `${hostname}\n` };
  for (const name of SANDBOX_ETC_FILES) {
    const path = join(dir, name);
    writeFileSync(path, files[name]);
    chmodSync(path, 0o644); // the agent's umask makes them 0600
  }
  return dir;
}

/**
 * Starts one sandbox as `user` (undefined: the agent's own) with the agent's Bun inside; resolves with
 * undefined when it ran, or the reason it did not. `workDir` is a root-owned directory it may use.
 */
export async function probeSandbox(host: SandboxHost, workDir: string, user?: { uid: number; gid: number }): Promise<string | undefined> {
  const dir = join(workDir, ".sandbox-probe");
  rmSync(dir, { recursive: true, force: true });
  try {
    mkdirSync(join(dir, "app"), { recursive: true });
    chmodSync(dir, 0o711);
    chmodSync(join(dir, "app"), 0o755); // bwrap, as `user`, opens what it binds
    const sandbox = instanceSandbox(host, {
      id: "probe",
      appDir: join(dir, "app"),
      tmp: { sizeBytes: 1 << 20 },
      shmBytes: 1 << 20,
      etcDir: writeSandboxEtc(join(dir, "etc"), user?.uid ?? process.getuid?.() ?? 0, user?.gid ?? process.getgid?.() ?? 0, "probe"),
      argv: [`${IN_SANDBOX.bin}/bun`, "--version"],
    });
    const launch = sandboxLaunch(host.bwrap, sandbox, join(dir, "bwrap-args"));
    let p;
    try {
      p = Bun.spawn(launch.argv, { uid: user?.uid, gid: user?.gid, stdio: ["ignore", "pipe", "pipe", launch.fd], cwd: "/" });
    } finally {
      closeSync(launch.fd);
    }
    const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
    if (code !== 0) return `${host.bwrap} exited with status ${code}: ${(err || out).trim().slice(0, 300)}`;
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
