// The status port's password (/routes and /metrics): SKIFF_ROUTER_STATUS_PASS when the operator set
// it, else the one kept in SKIFF_ROUTER_STATUS_PASS_FILE, generated there (0600) on the first start and
// read back on the next ones, so scrapers keep working across restarts. It is never written to the
// log: the log says where it is (issue 24).

import { randomBytes } from "node:crypto";
import { linkSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { resolve } from "node:path";
import { writePrivateFile } from "../../../bus/private-state.ts";

export type StatusPassword = { pass: string; from: "env" } | { pass: string; from: "file" | "generated"; file: string };

export class StatusPasswordError extends Error {
  override name = "StatusPasswordError";
}

export function statusPassword(envPass: string | undefined, file: string): StatusPassword {
  if (envPass) return { pass: envPass, from: "env" };
  const path = resolve(file);
  const kept = readKept(path);
  if (kept !== undefined) return { pass: kept, from: "file", file: path };
  // Written whole (0600) beside it, then linked into place: link() fails when another router sharing
  // the file made it first, and then both use that one.
  const pass = randomBytes(18).toString("base64url");
  const tmp = `${path}.${process.pid}.new`;
  writePrivateFile(tmp, `${pass}\n`);
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const theirs = readKept(path);
    if (theirs === undefined) throw err;
    return { pass: theirs, from: "file", file: path };
  } finally {
    unlinkSync(tmp);
  }
  return { pass, from: "generated", file: path };
}

/** The kept password, or undefined when there is no file; refuses one that others could read or write. */
function readKept(path: string): string | undefined {
  const st = statSync(path, { throwIfNoEntry: false });
  if (st === undefined) return undefined;
  const uid = process.geteuid?.() ?? st.uid;
  if (!st.isFile()) throw new StatusPasswordError(`${path} (SKIFF_ROUTER_STATUS_PASS_FILE) is not a file`);
  if (st.uid !== uid) throw new StatusPasswordError(`${path} holds the router's status password but belongs to uid ${st.uid}, not to this process (uid ${uid}): chown it, or remove it to have one generated`);
  if ((st.mode & 0o077) !== 0)
    throw new StatusPasswordError(`${path} holds the router's status password but other users may read it (mode ${(st.mode & 0o777).toString(8)}): chmod 600 ${path}, and change the password if it may have been read`);
  const pass = readFileSync(path, "utf8").trim();
  if (pass === "") throw new StatusPasswordError(`${path} (SKIFF_ROUTER_STATUS_PASS_FILE) is empty: put the status password in it, or remove it to have one generated`);
  return pass;
}
