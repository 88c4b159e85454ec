// Fixed, seeded route tables and request sets for the matcher bench: 80% exact hosts, 10% hosts with
// a context path, 10% wildcards, under a dozen shared domains (as a real CF foundation looks).

export type RouteKind = "exact" | "path" | "wildcard";

export interface BenchRoute {
  uri: string;
  id: number;
  kind: RouteKind;
  host: string;
  /** The context path (`/api/v2`) or "". */
  path: string;
}

/** One set of requests in the three shapes the contenders take. */
export interface LookupSet {
  name: string;
  hosts: string[];
  targets: string[];
  /** `/` + host + target without its query: for routers keyed on one path string. */
  joined: string[];
  /** Requests in this set that should find a route. */
  expectedHits: number;
}

const DOMAINS = [
  "apps.example.com", "cfapps.io", "eu.apps.acme.net", "apps.internal", "run.skiff.dev", "prod.shop.example.org",
  "staging.shop.example.org", "apps.bank.co.uk", "api.corp.local", "apps.lab.io", "emea.apps.big.example", "skiff.localhost",
];
const WORDS = ["orders", "billing", "web", "api", "catalog", "search", "auth", "images", "cart", "reports", "admin", "status"];
const TARGETS = ["/", "/index.html", "/static/js/app.3f2a1.js", "/api/v1/users/42?expand=orders", "/health", "/assets/logo.svg?v=3"];

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeRoutes(count: number, seed = 42): BenchRoute[] {
  const random = prng(seed);
  const routes: BenchRoute[] = [];
  for (let i = 0; i < count; i++) {
    const domain = DOMAINS[Math.floor(random() * DOMAINS.length)]!;
    const word = WORDS[Math.floor(random() * WORDS.length)]!;
    const tag = i.toString(36);
    const r = random();
    if (r < 0.8) {
      const host = `${word}-${tag}.${domain}`;
      routes.push({ uri: host, id: i, kind: "exact", host, path: "" });
    } else if (r < 0.9) {
      const host = `${word}-${tag}.${domain}`;
      const path = random() < 0.5 ? `/api/v${1 + (i % 3)}` : `/${WORDS[i % WORDS.length]}`;
      routes.push({ uri: host + path, id: i, kind: "path", host, path });
    } else {
      const host = `*.t-${tag}.${domain}`;
      routes.push({ uri: host, id: i, kind: "wildcard", host, path: "" });
    }
  }
  // Template strings are V8 cons strings, flattened in place (a new flat copy on the heap) on their
  // first charCodeAt: flatten them all now, before a bench takes its heap baseline, or the first
  // build would count every key's flat copy as the table's heap.
  const uris = flatStrings(routes.map((r) => r.uri));
  const hosts = flatStrings(routes.map((r) => r.host));
  routes.forEach((r, i) => {
    r.uri = uris[i]!;
    r.host = r.kind === "path" ? hosts[i]! : r.uri;
  });
  return routes;
}

/** Flat copies of strings (JSON.parse makes sequential strings). */
function flatStrings(strings: string[]): string[] {
  return JSON.parse(JSON.stringify(strings)) as string[];
}

/**
 * Fresh, flat copies of strings: requests reach a router as new strings, never as the very objects
 * it registered (which would let a Map compare pointers) nor as unflattened concatenations.
 */
function freshStrings(strings: string[]): string[] {
  return flatStrings(strings);
}

function makeSet(name: string, pairs: [string, string][], expectedHits: number): LookupSet {
  const hosts = freshStrings(pairs.map((p) => p[0]));
  const targets = freshStrings(pairs.map((p) => p[1]));
  const joined = freshStrings(
    pairs.map(([h, t]) => {
      const q = t.indexOf("?");
      return `/${h}${q < 0 ? t : t.slice(0, q)}`;
    }),
  );
  return { name, hosts, targets, joined, expectedHits };
}

/** `warm` is the `hot` requests looked up past any answer cache (see measure-contender.ts). */
export type LookupSetName = "hot" | "warm" | "exact" | "path" | "wildcard" | "miss";

/** How many distinct requests the `hot` set cycles through: few enough to stay in cache. */
const HOT_REQUESTS = 1000;

/**
 * Request sets: hits on each kind of route drawn uniformly from the whole table (so, at 1M routes,
 * both the table and the request strings are mostly out of cache), misses (unknown hosts under the
 * same domains), and `hot`: exact-host hits cycling through 1,000 requests, the matcher's CPU cost
 * when the table entries and strings it touches are cached (closer to a router's skewed traffic).
 * `warm` holds the same requests as `hot`, for a contender to look up past its answer cache.
 */
export function makeLookupSets(routes: BenchRoute[], size: number, seed = 7): Record<LookupSetName, LookupSet> {
  const random = prng(seed);
  const byKind = (kind: RouteKind) => routes.filter((r) => r.kind === kind);
  const pickFrom = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
  const target = () => pickFrom(TARGETS);
  const exact = byKind("exact");
  const path = byKind("path");
  const wildcard = byKind("wildcard");
  const pairs = (items: BenchRoute[], make: (r: BenchRoute) => [string, string]) =>
    items.length === 0 ? [] : Array.from({ length: size }, () => make(pickFrom(items)));
  const exactSet = makeSet("exact", pairs(exact, (r) => [r.host, target()]), exact.length ? size : 0);
  const cycle = (strings: string[]) => strings.map((_, i) => strings[i % HOT_REQUESTS]!);
  const hot = { name: "hot", hosts: cycle(exactSet.hosts), targets: cycle(exactSet.targets), joined: cycle(exactSet.joined), expectedHits: exactSet.expectedHits };
  return {
    hot,
    warm: { ...hot, name: "warm" },
    exact: exactSet,
    path: makeSet("path", pairs(path, (r) => [r.host, `${r.path}/items/${Math.floor(random() * 1000)}?page=2`]), path.length ? size : 0),
    wildcard: makeSet("wildcard", pairs(wildcard, (r) => [`shop${Math.floor(random() * 100)}${r.host.slice(1)}`, target()]), wildcard.length ? size : 0),
    miss: makeSet(
      "miss",
      Array.from({ length: size }, (_, i) => [`nope-${i.toString(36)}.${pickFrom(DOMAINS)}`, target()] as [string, string]),
      0,
    ),
  };
}
