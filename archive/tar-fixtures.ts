// Hand-made tar archives for tests, hostile ones included: any type byte, a size that lies, a bad or
// signed checksum, no end-of-archive blocks. What real tar writes is tested with real tar.

export interface FixtureEntry {
  name: string;
  /** the type byte; "0" (a file) when absent */
  type?: string;
  /** written after the header whatever the type (pax and long-name records carry theirs here) */
  data?: string | Uint8Array;
  linkname?: string;
  mode?: number;
  /** the size the header claims; the data's length when absent */
  size?: number;
  /** "bad": off by one; "signed": the sum of the bytes as signed chars, as some old tars wrote it */
  checksum?: "bad" | "signed";
}

const BLOCK = 512;
const enc = new TextEncoder();

function header(e: FixtureEntry, dataLength: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const put = (s: string, at: number, len: number) => h.set(enc.encode(s).subarray(0, len), at);
  const type = e.type ?? "0";
  put(e.name, 0, 100);
  put((e.mode ?? (type === "5" ? 0o755 : 0o644)).toString(8).padStart(7, "0") + "\0", 100, 8);
  put((e.size ?? dataLength).toString(8).padStart(11, "0") + "\0", 124, 12);
  put(type, 156, 1);
  put(e.linkname ?? "", 157, 100);
  put("ustar\u000000", 257, 8);
  h.fill(32, 148, 156);
  let sum = 0;
  for (const b of h) sum += e.checksum === "signed" && b > 127 ? b - 256 : b;
  if (e.checksum === "bad") sum += 1;
  put(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8);
  return h;
}

/** A ustar archive of `entries`, each padded to the block, then (unless `end` is false) two zero blocks. */
export function ustarArchive(entries: FixtureEntry[], end = true): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const data = typeof e.data === "string" ? enc.encode(e.data) : (e.data ?? new Uint8Array());
    blocks.push(header(e, data.length));
    const padded = new Uint8Array(Math.ceil(data.length / BLOCK) * BLOCK);
    padded.set(data);
    blocks.push(padded);
  }
  if (end) blocks.push(new Uint8Array(2 * BLOCK));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of blocks) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

/** The body of a pax extended header: "<len> <key>=<value>\n" per record, the length counting itself. */
export function paxRecords(records: Record<string, string>): string {
  return Object.entries(records)
    .map(([k, v]) => {
      const body = ` ${k}=${v}\n`;
      const n = enc.encode(body).length;
      let len = n + 1;
      while (String(len).length + n !== len) len = String(len).length + n;
      return `${len}${body}`;
    })
    .join("");
}
