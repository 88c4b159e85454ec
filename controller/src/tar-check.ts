// Checks an uploaded gzip tar before anything unpacks it: every entry must stay inside the app
// directory (no absolute paths, no `..`, no links that point out, no devices). Pure; no file system.

export class PackageRejected extends Error {
  override name = "PackageRejected";
}

const decoder = new TextDecoder();

function field(block: Uint8Array, off: number, len: number): string {
  const slice = block.subarray(off, off + len);
  const nul = slice.indexOf(0);
  return decoder.decode(nul >= 0 ? slice.subarray(0, nul) : slice);
}

function octal(block: Uint8Array, off: number, len: number): number {
  const first = block[off]!;
  if (first & 0x80) {
    // base-256 (GNU) for large sizes
    let n = 0;
    for (let i = 1; i < len; i++) n = n * 256 + block[off + i]!;
    return n;
  }
  const s = field(block, off, len).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

function escapes(path: string): boolean {
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) return true;
  let depth = 0;
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (--depth < 0) return true;
    } else depth++;
  }
  return false;
}

function parentOf(path: string): string {
  const parts = path.split("/").filter((p) => p && p !== ".");
  parts.pop();
  return parts.join("/");
}

export interface TarSummary {
  entries: number;
  bytes: number;
}

/** Validates an uncompressed tar archive. Throws PackageRejected with the offending entry. */
export function checkTar(tar: Uint8Array, limits = { maxEntries: 100_000 }): TarSummary {
  let off = 0;
  let entries = 0;
  let bytes = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  let paxLink: string | undefined;
  while (off + 512 <= tar.length) {
    const block = tar.subarray(off, off + 512);
    if (block.every((b) => b === 0)) break;
    const size = octal(block, 124, 12);
    const type = String.fromCharCode(block[156] || 48);
    const dataStart = off + 512;
    const next = dataStart + Math.ceil(size / 512) * 512;
    if (!Number.isFinite(size) || size < 0 || dataStart + size > tar.length) throw new PackageRejected("the archive is truncated or corrupt");
    const data = tar.subarray(dataStart, dataStart + size);
    off = next;
    if (type === "L") {
      longName = decoder.decode(data).replace(/\0+$/, "");
      continue;
    }
    if (type === "x") {
      const pax = decoder.decode(data);
      for (const line of pax.split("\n")) {
        const m = /^\d+ (path|linkpath)=(.*)$/.exec(line);
        if (m) m[1] === "path" ? (paxPath = m[2]) : (paxLink = m[2]);
      }
      continue;
    }
    if (type === "g" || type === "K") continue;
    const prefix = field(block, 345, 155);
    let name = paxPath ?? longName ?? (prefix ? `${prefix}/${field(block, 0, 100)}` : field(block, 0, 100));
    const link = paxLink ?? field(block, 157, 100);
    longName = paxPath = paxLink = undefined;
    if (++entries > limits.maxEntries) throw new PackageRejected(`more than ${limits.maxEntries} entries`);
    if (escapes(name)) throw new PackageRejected(`entry "${name}" would be written outside the app directory`);
    if (type === "3" || type === "4" || type === "6") throw new PackageRejected(`entry "${name}" is a device or fifo`);
    if (type === "1" && escapes(link)) throw new PackageRejected(`hard link "${name}" points outside the app directory`);
    if (type === "2") {
      const target = link.startsWith("/") ? link : `${parentOf(name)}/${link}`;
      if (escapes(target)) throw new PackageRejected(`symlink "${name}" -> "${link}" points outside the app directory`);
    }
    bytes += size;
    name = "";
  }
  return { entries, bytes };
}

/** Gunzips (refusing more than maxBytes uncompressed) and checks the archive. */
export function checkTarGz(gz: Uint8Array, maxBytes: number): TarSummary {
  if (gz.length < 2 || gz[0] !== 0x1f || gz[1] !== 0x8b) throw new PackageRejected("the package is not a gzip tar (.tar.gz)");
  let tar: Uint8Array;
  try {
    tar = Bun.gunzipSync(gz as Uint8Array<ArrayBuffer>);
  } catch {
    throw new PackageRejected("the package is not valid gzip");
  }
  if (tar.length > maxBytes) throw new PackageRejected(`the unpacked package is larger than ${maxBytes} bytes`);
  return checkTar(tar);
}
