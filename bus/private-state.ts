// Every file the platform writes is the platform's alone. This is the one place that sets the process
// umask, makes the state folders (0700, or 0711 where instances must pass through), tightens what an
// older version left readable, and refuses a folder it cannot make private, saying how to fix it.

import { chmodSync, closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, statSync, writeSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";

/** What a state folder never holds: finding one means a setting points at a project or a checkout. */
const NOT_STATE = [".git", "package.json", "node_modules"];

/** Files 0600 and folders 0700 as they are made: nothing is ever readable by another uid, not even for a moment. */
export const PRIVATE_UMASK = 0o077;

export class InsecureStateError extends Error {
  override readonly name = "InsecureStateError";
}

/** Sets the umask every component runs with; call it first thing in each main. Children inherit it. */
export function restrictUmask(): void {
  process.umask(PRIVATE_UMASK);
}

const euid = () => process.geteuid?.() ?? 0;

/**
 * Refuses a state folder that the platform cannot keep private: one owned by another uid (its owner
 * could open it up again), or one below a folder that another user may write without the sticky bit
 * (they could move ours aside and put their own in its place).
 */
export function checkStateDir(path: string, what: string): void {
  const abs = resolve(path);
  const st = statSync(abs);
  if (!st.isDirectory()) throw new InsecureStateError(`${what} ${abs} is not a directory`);
  if (st.uid !== euid())
    throw new InsecureStateError(`${what} ${abs} belongs to uid ${st.uid}, not to this process (uid ${euid()}): chown it to the user skiff runs as, or choose another directory`);
  // Tightening is recursive: a setting that resolves to a checkout, a home or / (an empty SKIFF_DATA_DIR
  // once resolved to the checkout) must stop here, not chmod someone's tree.
  const notState = abs === "/" || abs === homedir() || NOT_STATE.find((name) => existsSync(join(abs, name)));
  if (notState)
    throw new InsecureStateError(`${what} is ${abs}, which ${typeof notState === "string" ? `holds ${notState}: it looks like a project, not skiff's state` : "is not a state folder"}; set it to a directory of its own (e.g. .skiff/ inside the checkout)`);
  for (let dir = dirname(abs); ; dir = dirname(dir)) {
    const a = statSync(dir);
    const sticky = (a.mode & 0o1000) !== 0;
    const othersWrite = (a.mode & 0o002) !== 0 || ((a.mode & 0o020) !== 0 && a.gid !== 0);
    if (othersWrite && !sticky)
      throw new InsecureStateError(`${what} ${abs} is inside ${dir}, which other users may write (mode ${(a.mode & 0o7777).toString(8)}): chmod go-w ${dir} (or +t), or choose a directory elsewhere`);
    if (dir === "/") break;
  }
}

/**
 * Makes `path` (and missing parents) a folder only this uid can enter, tightens everything below it that
 * an older version (or a hand) left open to others, and checks it (checkStateDir). Returns how many
 * entries it had to tighten, so a main can say so.
 */
export function privateDir(path: string, what: string, opts: { tighten?: boolean } = {}): number {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  checkStateDir(path, what);
  let changed = chmodIfLoose(path, 0o700);
  if (opts.tighten !== false) changed += tightenTree(path);
  return changed;
}

/**
 * A folder that other uids may pass through but not list (0711): the way from a state folder to the
 * one directory an instance or a server running as another user owns below it.
 */
export function traverseOnlyDir(path: string, what: string): void {
  mkdirSync(path, { recursive: true, mode: 0o711 });
  checkStateDir(path, what);
  chmodIfLoose(path, 0o711, true);
}

/**
 * What each component's start does with its state folder: the private umask, the folder made or checked
 * private, and a warning when files an older version left readable had to be tightened.
 */
export function openPrivateState(dir: string, what: string, log?: { warn(msg: string, fields?: Record<string, unknown>): void }): void {
  restrictUmask();
  const tightened = privateDir(dir, what);
  if (tightened > 0) log?.warn("tightened files that other users could read", { dir: resolve(dir), count: tightened });
}

/**
 * Removes group and other permissions from every entry below `root` (links are never followed), except
 * the top-level entries named in `skip` (what other uids own and need, e.g. an instance's directory).
 */
export function tightenTree(root: string, skip: readonly string[] = []): number {
  let changed = 0;
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (dir === root && skip.includes(name)) continue;
      const p = join(dir, name);
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st || st.isSymbolicLink()) continue;
      if (st.isDirectory()) {
        changed += chmodIfLoose(p, (st.mode & 0o7700) | 0o700);
        walk(p);
      } else if (st.isFile() || st.isSocket() || st.isFIFO()) {
        changed += chmodIfLoose(p, st.mode & 0o7700);
      }
    }
  };
  walk(root);
  return changed;
}

/** Writes a file only this uid can read (0600), atomically: a reader sees the old content or the new. */
export function writePrivateFile(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600); // an inherited looser umask cannot widen it
  renameSync(tmp, path);
}

/** The permission bits of `path` as an octal string, for messages and tests. */
export function modeOf(path: string): string {
  return (statSync(path).mode & 0o7777).toString(8);
}

/**
 * chmod to `mode` when the current bits give others (or the group) more than `mode` does; with
 * `exact`, whenever they differ. Returns 1 when it changed something.
 */
function chmodIfLoose(path: string, mode: number, exact = false): number {
  const st = lstatSync(path);
  const cur = st.mode & 0o7777;
  const loose = exact ? cur !== mode : (cur & 0o077 & ~mode) !== 0;
  if (!loose) return 0;
  chmodSync(path, mode);
  return 1;
}
