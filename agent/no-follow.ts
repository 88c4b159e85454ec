// File operations the root agent does inside trees an app controls (an unpacked package or droplet,
// a staging dir after the build ran): none of them follows a symlink, so a link planted in the tree
// can never make root read, write or chown something outside it.

import { closeSync, constants, fstatSync, lstatSync, openSync, readSync } from "node:fs";

export class NotRealError extends Error {
  override name = "NotRealError";
}

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = constants;

/**
 * The contents of a regular file, or undefined when nothing is there. Throws NotRealError when the
 * path is a symlink, a directory, a FIFO or a device, or when the file holds more than `maxBytes`.
 */
export function readRegularFile(path: string, what: string, maxBytes = 1024 * 1024): string | undefined {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO planted under this name must not hang the agent
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP") throw new NotRealError(`${what} is a symlink, not a file: remove the link and ship the file itself`);
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new NotRealError(`${what} is not a regular file`);
    if (st.size > maxBytes) throw new NotRealError(`${what} is over ${maxBytes} bytes`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.toString("utf8", 0, off);
  } finally {
    closeSync(fd);
  }
}

/** Throws NotRealError unless `path` is a directory itself (not a symlink to one); false when absent. */
export function isRealDir(path: string, what: string): boolean {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return false;
  if (!st.isDirectory()) throw new NotRealError(`${what} is ${st.isSymbolicLink() ? "a symlink" : "not a directory"}; it must be a directory`);
  return true;
}
