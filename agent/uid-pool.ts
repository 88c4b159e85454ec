// Hands each instance and staging task a uid (and the gid of the same number) of its own from a
// configured range, so that no app can read another's /proc/<pid>/environ (its VCAP_SERVICES
// credentials), signal its processes or read its files. The ids are plain numbers: no /etc/passwd
// entry is made, and ids that /etc/passwd or /etc/group name are never handed out.
//
// Several agents may share a host (tests do; a host may run one agent per disk), so a uid is taken
// through a lock file in a host-wide directory, created with O_EXCL and naming the agent that holds it
// (pid and process start time). A lock whose agent died is taken over through a second O_EXCL file,
// so two agents never both take it. A uid that some process outside any lock runs as is left alone.

import { readdirSync, readFileSync, statSync, unlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { isAlive, processStartTicks } from "./proc-stats.ts";

export interface UidRange {
  first: number;
  last: number;
}

export class UidRangeError extends Error {
  override name = "UidRangeError";
}

export class UidsExhaustedError extends Error {
  override name = "UidsExhaustedError";
}

/** "40000-49999" → {first, last}; throws UidRangeError saying what a valid range looks like. */
export function parseUidRange(text: string): UidRange {
  const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(text);
  const first = m ? Number(m[1]) : NaN;
  const last = m ? Number(m[2]) : NaN;
  if (!m || !(first >= 1000) || !(last >= first) || last > 2 ** 31 - 2)
    throw new UidRangeError(`SKIFF_AGENT_UID_RANGE must be "first-last" with 1000 <= first <= last (e.g. 40000-49999), not "${text}"`);
  return { first, last };
}

/** What the pool asks the host; replaced in unit tests. */
export interface UidPoolHost {
  /** this agent, as written into its lock files */
  self: string;
  /** is the agent a lock file names still running? */
  ownerAlive(owner: string): boolean;
  /** uids that live processes run as now (one /proc pass) */
  uidsInUse(): Set<number>;
  /** ids named in /etc/passwd or /etc/group */
  systemIds(): Set<number>;
}

export const hostOf = (): UidPoolHost => ({
  self: `${process.pid} ${processStartTicks(process.pid) ?? 0}`,
  ownerAlive(owner) {
    const [pid, ticks] = owner.trim().split(" ").map(Number);
    return !!pid && isAlive(pid) && (ticks === undefined || processStartTicks(pid) === ticks);
  },
  uidsInUse() {
    const out = new Set<number>();
    for (const name of readdirSync("/proc"))
      if (name.charCodeAt(0) >= 48 && name.charCodeAt(0) <= 57)
        try {
          out.add(statSync(`/proc/${name}`).uid); // the effective uid of the process
        } catch {}
    return out;
  },
  systemIds() {
    const out = new Set<number>();
    for (const file of ["/etc/passwd", "/etc/group"])
      try {
        for (const line of readFileSync(file, "utf8").split("\n")) {
          const id = Number(line.split(":")[2]);
          if (line && Number.isInteger(id)) out.add(id);
        }
      } catch {}
    return out;
  },
});

export class UidPool {
  private readonly held = new Set<number>();
  private next: number;
  private readonly reserved: Set<number>;

  constructor(
    readonly range: UidRange,
    private readonly lockDir: string,
    private readonly host: UidPoolHost = hostOf(),
  ) {
    mkdirSync(lockDir, { recursive: true, mode: 0o700 });
    this.reserved = host.systemIds();
    // start somewhere in the range, and go round it: a uid comes back into use as late as possible
    // (an ended instance may have left files in /tmp under its uid)
    this.next = range.first + Math.floor(Math.random() * (range.last - range.first + 1));
  }

  get size(): number {
    return this.range.last - this.range.first + 1;
  }

  /** A uid nobody else holds; throws UidsExhaustedError when the whole range is taken. */
  acquire(): number {
    const busy = this.host.uidsInUse();
    for (let k = 0; k < this.size; k++) {
      const uid = this.range.first + ((this.next - this.range.first + k) % this.size);
      if (this.held.has(uid) || this.reserved.has(uid) || busy.has(uid)) continue;
      if (!this.lock(uid)) continue;
      this.next = uid + 1 > this.range.last ? this.range.first : uid + 1;
      this.held.add(uid);
      return uid;
    }
    throw new UidsExhaustedError(
      `every uid of ${this.range.first}-${this.range.last} is in use: widen SKIFF_AGENT_UID_RANGE or run fewer instances on this host`,
    );
  }

  /** Gives a uid back (only once nothing runs as it any more). */
  release(uid: number): void {
    if (!this.held.delete(uid)) return;
    const path = join(this.lockDir, String(uid));
    try {
      if (readFileSync(path, "utf8").trim() === this.host.self) unlinkSync(path);
    } catch {}
  }

  /**
   * Takes over `uid` when the agent holding its lock is dead (an earlier run of this agent, whose
   * instances a restart cleans up): true when this agent now holds it.
   */
  claimStale(uid: number): boolean {
    if (this.held.has(uid)) return true;
    if (uid < this.range.first || uid > this.range.last || this.reserved.has(uid)) return false;
    if (!this.lock(uid)) return false;
    this.held.add(uid);
    return true;
  }

  /**
   * Removes the locks that agents which died left behind on uids nothing runs as (at start: the
   * lock dir does not fill up with them). Returns how many.
   */
  sweepStale(): number {
    let names: string[];
    try {
      names = readdirSync(this.lockDir);
    } catch {
      return 0;
    }
    const busy = this.host.uidsInUse();
    let swept = 0;
    for (const name of names) {
      const uid = Number(name);
      if (!/^\d+$/.test(name) || this.held.has(uid) || busy.has(uid)) continue;
      if (!this.claimStale(uid)) continue;
      this.release(uid);
      swept++;
    }
    return swept;
  }

  private lock(uid: number): boolean {
    const path = join(this.lockDir, String(uid));
    if (createExclusive(path, this.host.self)) return true;
    let owner: string;
    try {
      owner = readFileSync(path, "utf8");
    } catch {
      return false; // released meanwhile: the next acquire may have it
    }
    if (owner.trim() === this.host.self || this.host.ownerAlive(owner)) return false;
    // the holder died: take the lock over, one agent at a time
    const takeover = `${path}.takeover`;
    if (!createExclusive(takeover, this.host.self)) return false; // another agent is at it (or died at it: the uid stays out)
    try {
      if (readFileSync(path, "utf8") !== owner) return false;
      writeFileSync(path, this.host.self + "\n");
      return true;
    } catch {
      return false;
    } finally {
      unlinkSync(takeover);
    }
  }
}

function createExclusive(path: string, content: string): boolean {
  try {
    writeFileSync(path, content + "\n", { flag: "wx", mode: 0o600 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}
