// One `npm start` per data folder: the running one holds `<data dir>/cluster.lock` (its pid, its process
// start time, and its ports once up). A second start finds it and refuses, naming them, instead of
// starting a second cluster on other ports over the same state. A lock whose process is gone (SIGKILL,
// a reboot) is stale and taken over.

import { linkSync, readFileSync, rmSync, unlinkSync } from "node:fs";
import { writePrivateFile } from "../bus/private-state.ts";

export interface ClusterLockInfo {
  pid: number;
  /** the holder's start time in clock ticks after boot (/proc/<pid>/stat): a reused pid is not the holder */
  startTime: string;
  state: "starting" | "up";
  urls?: Record<string, string>;
}

export class ClusterAlreadyRunning extends Error {
  override readonly name = "ClusterAlreadyRunning";
  constructor(
    readonly lockFile: string,
    readonly holder: ClusterLockInfo,
  ) {
    const where = holder.urls
      ? Object.entries(holder.urls).map(([k, v]) => `\n  ${k.padEnd(14)} ${v}`).join("")
      : "\n  (still starting: its ports are not known yet)";
    super(
      `a skiff cluster from this data folder is already running, pid ${holder.pid}:${where}\n` +
        `Use it, or stop it first (Ctrl-C where it runs, or: kill ${holder.pid}). The lock is ${lockFile}.`,
    );
  }
}

function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return f[0] === "Z" ? undefined : f[19]; // a zombie holds nothing
  } catch {
    return undefined;
  }
}

function readLock(path: string): ClusterLockInfo | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as ClusterLockInfo;
  } catch {
    return undefined; // gone, or not ours to read: stale
  }
}

export interface ClusterLock {
  /** Records what the holder serves, for the message a second start prints. */
  update(state: ClusterLockInfo["state"], urls?: Record<string, string>): void;
  /** Removes the lock if it is still this process's. */
  release(): void;
}

/** Takes the lock or throws ClusterAlreadyRunning. */
export function acquireClusterLock(path: string): ClusterLock {
  const me: ClusterLockInfo = { pid: process.pid, startTime: startTimeOf(process.pid) ?? "", state: "starting" };
  // Written whole beside it, then linked into place: link fails if the lock exists (of two starts at
  // once, one wins), and a reader never sees a lock half written.
  const tmp = `${path}.${process.pid}`;
  writePrivateFile(tmp, JSON.stringify(me) + "\n");
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const holder = readLock(path);
      if (holder && startTimeOf(holder.pid) === holder.startTime) throw new ClusterAlreadyRunning(path, holder);
      if (attempt === 2) throw new Error(`could not take the lock ${path}: it keeps coming back; remove it if no skiff cluster runs from this folder`);
      rmSync(path, { force: true }); // stale
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  const ours = () => readLock(path)?.pid === me.pid;
  return {
    update(state, urls) {
      if (ours()) writePrivateFile(path, JSON.stringify({ ...me, state, urls }) + "\n");
    },
    release() {
      try {
        if (ours()) unlinkSync(path);
      } catch {}
    },
  };
}
