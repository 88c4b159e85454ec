// Checks an uploaded gzip tar before anything unpacks it: every entry must stay inside the app
// directory (no absolute paths, no `..`, no links that point out, no devices), and the archive must
// not unpack to more than the cap. The tar is scanned as it is gunzipped, a chunk at a time, so a
// gzip bomb costs the controller a few chunks of memory, never its unpacked size (issue 7).

import { createGunzip } from "node:zlib";
import { TarFormatError, TarReader, type TarEntry } from "../../archive/tar-reader.ts";
import { escapesAppDirectory, symlinkEscapesAppDirectory } from "./package-paths.ts";

export class PackageRejected extends Error {
  override name = "PackageRejected";
}

export interface TarSummary {
  entries: number;
  /** the sum of the entries' sizes */
  bytes: number;
}

/** Entry types the agent unpacks (files, links, directories); pax and long-name records never reach here. */
const ENTRY_TYPES = new Set(["0", "1", "2", "5", "7"]);

/** The controller's wording of an unreadable archive, as users see it in the refusal. */
function unreadable(err: TarFormatError): PackageRejected {
  const p = err.problem;
  switch (p.code) {
    case "invalid_size":
    case "truncated":
      return new PackageRejected("the archive is truncated or corrupt", { cause: err });
    case "global_override":
      return new PackageRejected(`${err.message}; pack the app with plain tar`, { cause: err });
    default:
      return new PackageRejected(err.message, { cause: err });
  }
}

function rejectingUnreadable(read: () => void): void {
  try {
    read();
  } catch (err) {
    throw err instanceof TarFormatError ? unreadable(err) : err;
  }
}

/** Refuses an entry skiff would not unpack safely: the controller's policy, checked before anything is stored. */
function checkEntry(e: TarEntry): void {
  const { name, type, linkname: link } = e;
  if (escapesAppDirectory(name)) throw new PackageRejected(`entry "${name}" would be written outside the app directory`);
  if (type === "3" || type === "4" || type === "6") throw new PackageRejected(`entry "${name}" is a device or fifo`);
  if (!ENTRY_TYPES.has(type)) throw new PackageRejected(`entry "${name}" has tar type "${type}", which skiff does not unpack; pack regular files, directories and links only`);
  if (type === "1" && escapesAppDirectory(link)) throw new PackageRejected(`hard link "${name}" points outside the app directory`);
  if (type === "2" && symlinkEscapesAppDirectory(name, link)) throw new PackageRejected(`symlink "${name}" -> "${link}" points outside the app directory`);
}

/**
 * An incremental check: `push` chunks as they arrive, then `end`. Keeps one header and the current
 * metadata record (archive/tar-reader.ts), never file contents. Throws PackageRejected at the first
 * bad entry.
 */
export class TarScanner {
  private readonly reader: TarReader;
  private bytes = 0;

  constructor(limits = { maxEntries: 100_000 }) {
    this.reader = new TarReader(
      {
        entry: (e) => {
          checkEntry(e);
          this.bytes += e.size;
        },
      },
      limits,
    );
  }

  push(chunk: Uint8Array): this {
    rejectingUnreadable(() => this.reader.push(chunk));
    return this;
  }

  end(): TarSummary {
    rejectingUnreadable(() => this.reader.finish());
    return { entries: this.reader.entries, bytes: this.bytes };
  }
}

/** Validates an uncompressed tar archive. Throws PackageRejected with the offending entry. */
export function checkTar(tar: Uint8Array, limits = { maxEntries: 100_000 }): TarSummary {
  return new TarScanner(limits).push(tar).end();
}

/**
 * Gunzips and checks the archive as one stream, refusing it as soon as it unpacks to more than
 * `maxBytes`: memory stays at a few zlib chunks whatever the archive claims.
 */
export async function checkTarGz(gz: Uint8Array, maxBytes: number, limits = { maxEntries: 100_000 }): Promise<TarSummary> {
  if (gz.length < 2 || gz[0] !== 0x1f || gz[1] !== 0x8b) throw new PackageRejected("the package is not a gzip tar (.tar.gz)");
  const scanner = new TarScanner(limits);
  const gunzip = createGunzip();
  gunzip.end(gz);
  let unpacked = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      unpacked += chunk.length;
      if (unpacked > maxBytes) throw new PackageRejected(`the unpacked package is larger than the limit of ${maxBytes} bytes`);
      scanner.push(chunk);
    }
  } catch (err) {
    if (err instanceof PackageRejected) throw err;
    throw new PackageRejected(`the package is not valid gzip: ${(err as Error).message}`);
  } finally {
    gunzip.destroy();
  }
  return scanner.end();
}
