// Which user instances run as: a named unprivileged user (default `nobody`) when the agent is root,
// else the agent's own user. Looked up in /etc/passwd once at start.

import { readFileSync } from "node:fs";

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
