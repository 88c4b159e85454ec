// Which user instances run as: a named unprivileged user (default `nobody`) when the agent is root,
// else the agent's own user. Looked up in /etc/passwd once at start.

import { readFileSync, statSync } from "node:fs";

export interface RunAsUser {
  name: string;
  uid: number;
  gid: number;
}

export function resolveRunAs(name: string): RunAsUser | undefined {
  if (!name || typeof process.getuid !== "function" || process.getuid() !== 0) return undefined;
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
