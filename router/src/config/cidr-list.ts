// A list of networks (CIDRs, or single addresses) parsed once at start into integer masks, so asking
// whether a peer is in it costs a few integer compares on the bytes uWS gives for the address: used for
// the trusted front ends (SKIFF_ROUTER_TRUSTED_PROXIES) and the metrics scrapers (SKIFF_ROUTER_METRICS_ALLOW).

import { isIPv4, isIPv6 } from "node:net";

export class CidrListError extends Error {
  override name = "CidrListError";
}

export class CidrList {
  /** IPv4 networks as [network, mask] pairs of int32 (the network already masked) */
  private readonly v4: Int32Array;
  /** IPv6 networks as 4 network words then 4 mask words each, int32 */
  private readonly v6: Int32Array;
  /** the entries as given, normalised, for logs */
  readonly entries: readonly string[];

  private constructor(v4: number[], v6: number[], entries: string[]) {
    this.v4 = Int32Array.from(v4);
    this.v6 = Int32Array.from(v6);
    this.entries = entries;
  }

  static readonly empty = new CidrList([], [], []);

  /** `10.0.0.0/8, 192.168.1.7, fd00::/8`: comma or space separated; `name` goes into the error. */
  static parse(list: string | undefined, name: string): CidrList {
    const v4: number[] = [];
    const v6: number[] = [];
    const entries: string[] = [];
    for (const item of (list ?? "").split(/[\s,]+/)) {
      if (item === "") continue;
      const slash = item.indexOf("/");
      const addr = slash < 0 ? item : item.slice(0, slash);
      const bitsText = slash < 0 ? "" : item.slice(slash + 1);
      const bad = (why: string) => new CidrListError(`${name}: "${item}" ${why}; give addresses or networks such as 10.0.0.0/8, 192.0.2.7 or fd00::/8, separated by commas`);
      const prefix = (max: number): number => {
        if (slash < 0) return max;
        if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) throw bad(`has a prefix length outside 0-${max}`);
        return Number(bitsText);
      };
      if (isIPv4(addr)) {
        const bits = prefix(32);
        const mask = bits === 0 ? 0 : (-1 << (32 - bits)) | 0;
        v4.push(ipv4Int(addr) & mask, mask);
        entries.push(`${addr}/${bits}`);
      } else if (isIPv6(addr)) {
        const bits = prefix(128);
        const words = ipv6Words(addr);
        if (bits >= 96 && words[0] === 0 && words[1] === 0 && words[2] === 0xffff) {
          // an IPv4-mapped network (::ffff:10.0.0.0/104) is the IPv4 network it maps
          const mask = wordMask(bits - 96);
          v4.push(words[3]! & mask, mask);
        } else {
          const masks = [0, 1, 2, 3].map((i) => wordMask(bits - 32 * i));
          v6.push(...words.map((w, i) => w & masks[i]!), ...masks);
        }
        entries.push(`${addr}/${bits}`);
      } else throw bad("is not an IP address or network");
    }
    return entries.length === 0 ? CidrList.empty : new CidrList(v4, v6, entries);
  }

  get size(): number {
    return this.entries.length;
  }

  /** The address as uWS's getRemoteAddress gives it: 4 bytes, or 16 (IPv4-mapped ones count as IPv4). */
  containsAddress(b: Uint8Array): boolean {
    if (b.length === 4) return this.containsV4((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!);
    if (b.length !== 16) return false;
    if (isIpv4Mapped(b)) return this.containsV4((b[12]! << 24) | (b[13]! << 16) | (b[14]! << 8) | b[15]!);
    const v6 = this.v6;
    if (v6.length === 0) return false;
    const w0 = word(b, 0), w1 = word(b, 4), w2 = word(b, 8), w3 = word(b, 12);
    for (let i = 0; i < v6.length; i += 8)
      if ((w0 & v6[i + 4]!) === v6[i] && (w1 & v6[i + 5]!) === v6[i + 1] && (w2 & v6[i + 6]!) === v6[i + 2] && (w3 & v6[i + 7]!) === v6[i + 3]) return true;
    return false;
  }

  /** The same for an address as text (tests, logs). */
  contains(text: string): boolean {
    if (isIPv4(text)) return this.containsV4(ipv4Int(text));
    if (!isIPv6(text)) return false;
    const bytes = new Uint8Array(16);
    ipv6Words(text).forEach((w, i) => {
      bytes[i * 4] = w >>> 24;
      bytes[i * 4 + 1] = w >>> 16;
      bytes[i * 4 + 2] = w >>> 8;
      bytes[i * 4 + 3] = w;
    });
    return this.containsAddress(bytes);
  }

  private containsV4(addr: number): boolean {
    const v4 = this.v4;
    for (let i = 0; i < v4.length; i += 2) if ((addr & v4[i + 1]!) === v4[i]) return true;
    return false;
  }
}

export function isIpv4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

function word(b: Uint8Array, at: number): number {
  return (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!;
}

/** the mask of one 32-bit word with `bits` of its prefix set (negative: none, over 32: all) */
function wordMask(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return -1;
  return (-1 << (32 - bits)) | 0;
}

function ipv4Int(text: string): number {
  const p = text.split(".").map(Number);
  return (p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!;
}

/** A valid IPv6 address (node:net checked it) as four int32 words; an IPv4 tail is allowed. */
function ipv6Words(text: string): number[] {
  let t = text;
  const zone = t.indexOf("%");
  if (zone >= 0) t = t.slice(0, zone);
  const groups: number[] = [];
  const parse = (part: string) => {
    const out: number[] = [];
    if (part === "") return out;
    for (const g of part.split(":")) {
      if (g.includes(".")) {
        const v = ipv4Int(g);
        out.push((v >>> 16) & 0xffff, v & 0xffff);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const gap = t.indexOf("::");
  if (gap < 0) groups.push(...parse(t));
  else {
    const head = parse(t.slice(0, gap));
    const tail = parse(t.slice(gap + 2));
    groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  }
  return [0, 1, 2, 3].map((i) => ((groups[i * 2]! << 16) | groups[i * 2 + 1]!) | 0);
}
