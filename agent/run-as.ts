// Which user instances and staging builds run as. When the agent is root: by default a uid (and gid)
// of their own from SKIFF_AGENT_UID_RANGE (uid-pool.ts), so apps cannot read each other's
// environment or signal each other; or one named user for all (SKIFF_AGENT_RUN_AS=<name>, no
// isolation between apps). Not root, or SKIFF_AGENT_RUN_AS="": the agent's own user.

import { readFileSync, statSync } from "node:fs";
import type { UidPool } from "./uid-pool.ts";

export interface RunAsUser {
  name: string;
  uid: number;
  gid: number;
  /** only this one instance (or task) runs as this uid: every process of the uid is its own */
  exclusive?: boolean;
}

/** Who each instance or staging task runs as. */
export interface InstanceUsers {
  /** "uids 40000-49999 (one per instance)", "nobody (shared)", "agent user" */
  readonly description: string;
  /** one of the users handed out, for the check that they can reach the data dir */
  readonly sample?: RunAsUser;
  /** the user for a new instance or task; undefined: the agent's own. Throws when none is free. */
  acquire(): RunAsUser | undefined;
  /** gives it back, once nothing runs as it */
  release(user: RunAsUser): void;
  /** an earlier run's instance's uid, for its leftovers to be swept (exclusive users only) */
  reclaim(uid: number): RunAsUser | undefined;
}

export function resolveRunAs(name: string): RunAsUser | undefined {
  if (!name || !isRoot()) return undefined;
  let passwd = "";
  try {
    passwd = readFileSync("/etc/passwd", "utf8");
  } catch {
    return undefined;
  }
  for (const line of passwd.split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name && uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

export const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

/** Every instance as `user` (undefined: the agent's own user). */
export function sharedUser(user: RunAsUser | undefined): InstanceUsers {
  return {
    description: user ? `${user.name} (shared by every instance)` : "agent user",
    sample: user,
    acquire: () => user,
    release: () => {},
    reclaim: () => undefined,
  };
}

const uidUser = (uid: number): RunAsUser => ({ name: `uid ${uid}`, uid, gid: uid, exclusive: true });

/** Each instance and task a uid of its own from `pool`. */
export function uidPoolUsers(pool: UidPool): InstanceUsers {
  return {
    description: `uids ${pool.range.first}-${pool.range.last} (one per instance)`,
    sample: uidUser(pool.range.first),
    acquire: () => uidUser(pool.acquire()),
    release: (user) => pool.release(user.uid),
    reclaim: (uid) => (pool.claimStale(uid) ? uidUser(uid) : undefined),
  };
}

/**
 * The first directory on the way to `path` that `user` cannot enter (no search permission), or
 * undefined. Instances run as `user` need every ancestor of their directory to be searchable.
 */
export function unreachableAncestor(path: string, user: RunAsUser): string | undefined {
  const parts = path.split("/").filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const dir = "/" + parts.slice(0, i).join("/");
    const st = statSync(dir);
    const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return dir;
  }
  return undefined;
}
