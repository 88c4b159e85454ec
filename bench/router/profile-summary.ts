// A V8 .cpuprofile (node --cpu-prof) summed by function over a time window, and those functions
// grouped into the kinds of work a proxied request is made of.

export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  /** µs, CLOCK_MONOTONIC */
  startTime: number;
  endTime: number;
  samples: number[];
  /** µs between samples */
  timeDeltas: number[];
}

export interface ProfileSummary {
  samples: number;
  /** self time by function, as a share of the window, largest first */
  byFunction: { name: string; url: string; share: number }[];
}

/** Self time per function over samples taken in [fromMicros, toMicros). */
export function summarizeProfile(p: CpuProfile, fromMicros: number, toMicros: number): ProfileSummary {
  const frames = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, { name: string; url: string; micros: number }>();
  let t = p.startTime;
  let total = 0;
  let samples = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromMicros || t >= toMicros) continue;
    const f = frames.get(p.samples[i]!);
    if (!f) continue;
    const file = f.url.split("/").pop() ?? "";
    const name = `${f.functionName || "(anonymous)"}${file ? ` ${file}:${f.lineNumber + 1}` : ""}`;
    const entry = self.get(name) ?? { name, url: f.url, micros: 0 };
    entry.micros += dt;
    self.set(name, entry);
    total += dt;
    samples++;
  }
  const byFunction = [...self.values()].sort((a, b) => b.micros - a.micros).map((e) => ({ name: e.name, url: e.url, share: total > 0 ? e.micros / total : 0 }));
  return { samples, byFunction };
}

interface Kind {
  key: string;
  kind: string;
  what: string;
  match: (name: string, url: string) => boolean;
}

const fn = (name: string) => name.split(" ")[0]!;
/** the router's own code: the bundle (router.mjs, or a bench copy of it) */
const ours = (url: string) => /router[^/]*\.mjs$/.test(url) || url.includes("/router/src/");

const KINDS: Kind[] = [
  { key: "upstream_write", kind: "write to the instance", what: "the request head written on the libuv handle: write(2) on loopback TCP", match: (n, u) => u === "" && /^write(Utf8String|Buffer|v|Latin1String|AsciiString)$/.test(fn(n)) },
  { key: "relay_response", kind: "relay the response", what: "onUpstreamData: the response head parsed and sent through uWS (cork, end → send(2) to the client)", match: (n, u) => ours(u) && fn(n) === "onUpstreamData" },
  { key: "client_address", kind: "client address", what: "uWS getRemoteAddress for X-Forwarded-For: getpeername(2) and an ArrayBuffer per request", match: (n, u) => ours(u) && (fn(n) === "peerBytes" || fn(n) === "peerText") },
  { key: "event_loop", kind: "event loop poll", what: "(idle): epoll_wait, and libuv's read(2) of the instance's responses before the JS callback", match: (n) => fn(n) === "(idle)" },
  { key: "skiff_js", kind: "skiff's JS", what: "request head copy, route lookup, pick, exchange, upstream pool (self time only)", match: (_n, u) => ours(u) },
  { key: "node_internals", kind: "Node internals", what: "stream callbacks and other Node JS", match: (_n, u) => u.startsWith("node:") || (u !== "" && !u.includes("/")) },
  { key: "gc", kind: "garbage collection", what: "(garbage collector)", match: (n) => n.startsWith("(garbage collector)") },
  { key: "other", kind: "other", what: "(program): native work with no JS on the stack (uWS's recv(2) and HTTP parser), and the rest", match: () => true },
];

/** Shares of the window by kind, in KINDS order (each function counted in its first matching kind). */
export function categorize(byFunction: ProfileSummary["byFunction"]): { key: string; kind: string; what: string; share: number }[] {
  const shares = new Map<string, number>(KINDS.map((k) => [k.key, 0]));
  for (const f of byFunction) {
    const k = KINDS.find((k) => k.match(f.name, f.url))!;
    shares.set(k.key, shares.get(k.key)! + f.share);
  }
  return KINDS.map((k) => ({ key: k.key, kind: k.kind, what: k.what, share: shares.get(k.key)! }));
}
