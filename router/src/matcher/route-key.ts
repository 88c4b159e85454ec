// Normalises route keys: a registered CF uri (`app.example.com/api`) and a request's Host header plus
// raw target both become a host string and a list of path segments, or null when refused.
//
// Semantics, taken from gorouter (route.Uri.RouteKey, registry.Lookup, container.Trie.MatchUri) and
// mirrored byte for byte by the WASM matcher (wasm/src/key.rs):
// - Hosts: a port is stripped (`host:8080`, `[::1]:8080`; the port must be digits), then ASCII
//   lower-casing, then one trailing dot is stripped. A host is refused when it is empty, longer than
//   253 bytes, has an empty label (`a..b`, `.a`, `a..`), or holds a byte outside 0x21-0x7e or one of
//   `/ ? # \ *`. The only `*` allowed is a whole leftmost label of a registered key with at least two
//   labels (`*.example.com`); a request Host containing `*` is refused (lookup -1).
// - Paths are matched on the raw target, never percent-decoded (`%2F` is not a separator, `%41` is not
//   `A`), and, like gorouter's RouteKey, ASCII-lower-cased: paths are case-insensitive. Query (`?`) and
//   fragment (`#`) are cut off. Segments are split on `/` and compared whole, so `/api` matches `/api`,
//   `/api/` and `/api/x` but not `/apix`. `..` and `.` are ordinary segments (no resolution: the
//   backend sees the raw target, as behind gorouter) and `//` is an empty segment, not collapsed (as in
//   gorouter), so `/api//x` matches `/api` but not `/api/x`. Trailing slashes of a registered path are
//   dropped (`app.com/api/` is `app.com/api`; `app.com/` is `app.com`). A request target that does not
//   start with `/` (`*`, absolute-form) matches only routes without a path: the router should turn an
//   absolute-form target into origin-form first.
// - A registered key is refused when its path (after the host, before `?`) is longer than
//   MAX_PATH_BYTES; a raw Host header longer than MAX_RAW_HOST_BYTES is refused. Because no registered
//   path is longer than MAX_PATH_BYTES, a lookup only ever needs the first MAX_PATH_BYTES + 1 bytes of a
//   target, which is what lets the WASM matcher use a fixed input buffer.
// - Lookup order (gorouter's): the exact host with the longest matching path; only when that host has
//   no match, the wildcards, leftmost label first: `a.b.c` -> `*.b.c` -> `*.c` (never `*`). An exact
//   host therefore beats a wildcard even when the wildcard has a longer path match, but an exact host
//   whose routes all have paths that do not match falls through to the wildcards.

export const MAX_HOST_BYTES = 253;
export const MAX_PATH_BYTES = 4096;
export const MAX_RAW_HOST_BYTES = 1024;

/** A registered route, normalised: `host` is lower-case without port; `segments` are the path's. */
export interface RouteKey {
  readonly host: string;
  readonly segments: readonly string[];
  /** The key in canonical form (`host/seg/seg`), usable as a map key. */
  readonly canonical: string;
}

/** A request, normalised: `segments` start after the leading `/`; `offsets[i]` is where segment i ends. */
export interface RequestKey {
  readonly host: string;
  readonly segments: readonly string[];
  /** `ends[i]` is the length of the raw target prefix that ends with segment i (for matched lengths). */
  readonly ends: readonly number[];
}

const UPPER_A = 65;
const UPPER_Z = 90;

/** ASCII-only lower-casing (the WASM side does the same on bytes; `toLowerCase` would touch Unicode). */
export function asciiLower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= UPPER_A && c <= UPPER_Z) return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
  }
  return s;
}

/** Strips the port, lower-cases, strips one trailing dot, validates; null if refused. */
export function normaliseHost(raw: string, allowWildcard: boolean): string | null {
  if (raw.length > MAX_RAW_HOST_BYTES) return null;
  let host = raw;
  let portAt = -1;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const close = host.indexOf("]");
    if (close < 0) return null;
    if (close + 1 < host.length) {
      if (host.charCodeAt(close + 1) !== 0x3a /* : */) return null;
      portAt = close + 1;
    }
  } else {
    portAt = host.indexOf(":");
  }
  if (portAt >= 0) {
    for (let i = portAt + 1; i < host.length; i++) {
      const c = host.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return null;
    }
    host = host.slice(0, portAt);
  }
  host = asciiLower(host);
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host.length === 0 || host.length > MAX_HOST_BYTES) return null;
  let labelStart = 0;
  for (let i = 0; i <= host.length; i++) {
    const c = i < host.length ? host.charCodeAt(i) : 0x2e;
    if (c === 0x2e /* . */) {
      if (i === labelStart) return null;
      labelStart = i + 1;
      continue;
    }
    if (c < 0x21 || c > 0x7e) return null;
    if (c === 0x2f || c === 0x3f || c === 0x23 || c === 0x5c) return null; // / ? # \
    if (c === 0x2a /* * */) {
      // Only a whole leftmost label, and not the whole host.
      const ok = allowWildcard && i === 0 && host.length > 2 && host.charCodeAt(1) === 0x2e;
      if (!ok) return null;
    }
  }
  return host;
}

/** Index of the first `?` or `#` in s at or after from, or s.length. */
function endOfPath(s: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x3f || c === 0x23) return i;
  }
  return s.length;
}

/** Normalises a registered uri (`host[:port][/path][?query]`); null if refused. */
export function parseRouteUri(uri: string): RouteKey | null {
  const pathEnd = endOfPath(uri, 0);
  let slash = uri.indexOf("/");
  if (slash < 0 || slash > pathEnd) slash = pathEnd;
  const host = normaliseHost(uri.slice(0, slash), true);
  if (host === null) return null;
  let end = pathEnd;
  while (end > slash && uri.charCodeAt(end - 1) === 0x2f) end--;
  if (end - slash > MAX_PATH_BYTES) return null;
  if (end <= slash) return { host, segments: [], canonical: host };
  const path = asciiLower(uri.slice(slash + 1, end));
  if (utf8Length(path) + 1 > MAX_PATH_BYTES) return null;
  return { host, segments: path.split("/"), canonical: `${host}/${path}` };
}

/** Normalises a request's raw Host header and raw target; null if the host is refused. */
export function parseRequest(hostHeader: string, target: string): RequestKey | null {
  const host = normaliseHost(hostHeader, false);
  if (host === null) return null;
  if (target.charCodeAt(0) !== 0x2f) return { host, segments: [], ends: [] };
  const end = endOfPath(target, 0);
  const segments: string[] = [];
  const ends: number[] = [];
  let start = 1;
  for (;;) {
    let stop = target.indexOf("/", start);
    if (stop < 0 || stop > end) stop = end;
    segments.push(asciiLower(target.slice(start, stop)));
    ends.push(stop);
    if (stop >= end) break;
    start = stop + 1;
  }
  return { host, segments, ends };
}

/** The wildcard keys tried after an exact miss, in order: `a.b.c` -> [`*.b.c`, `*.c`]. */
export function wildcardFallbacks(host: string): string[] {
  const out: string[] = [];
  let dot = host.indexOf(".");
  while (dot >= 0) {
    out.push(`*${host.slice(dot)}`);
    dot = host.indexOf(".", dot + 1);
  }
  return out;
}

export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
