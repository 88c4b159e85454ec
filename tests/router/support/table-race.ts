// A reader thread hammering lookups while the writer churns the shared route table (issue 16), run
// under Node (bundled by tests/router/router-table-threads.test.ts). The writer applies a seeded
// schedule of registrations and unregistrations through the real RouteRegistry and WASM matcher,
// counting the changes applied in a shared word inside the same seqlock write. The reader, in a
// worker thread with its own WasmMatcherReader, looks up and picks; for every answer it also knows
// how many changes the table held when it read (the shared word, read in the same read section),
// replays exactly those changes into a one-thread table of its own (RouteRegistry over the
// TypeScript reference matcher), and compares. Prints one JSON line: checks, mismatches, retries, traps.
//
//   node table-race.mjs [--seconds 3] [--no-seqlock]   (--no-seqlock: the reader trusts every read:
//                                                      the negative control, which must see torn routes)

import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type { RouterRegister } from "../../../bus/index.ts";
import { ReferenceMatcher } from "../../../router/src/matcher/reference-matcher.ts";
import { loadWasmMatcherSync, WasmMatcherReader, type MatcherShare } from "../../../router/src/matcher/wasm-matcher.ts";
import { RouteRegistry } from "../../../router/src/registry/route-registry.ts";
import type { RoutePool } from "../../../router/src/route/route-pool.ts";
import { RouteTableReader, type RouteTableShare } from "../../../router/src/route/table-reader.ts";

const CHANGES = 400_000;
const HOSTS = 3000;

interface Change {
  register: boolean;
  msg: RouterRegister;
}

/** The schedule both threads build alike: hosts come and go with one to three endpoints, some with context paths and wildcards. */
function schedule(seed: number): Change[] {
  let x = seed >>> 0 || 1;
  const rnd = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const out: Change[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const h = rnd(HOSTS);
    const uri = h % 10 === 0 ? `*.w${h}.race.test` : h % 10 === 1 ? `h${h}.race.test/api/v${h % 3}` : `h${h}.race.test`;
    const port = 10_000 + (h % 97) * 3 + rnd(3);
    out.push({ register: rnd(5) < 3, msg: { host: "10.1.0.1", port, uris: h % 7 === 0 ? [uri, `alias${h}.race.test`] : [uri], app: `app-${h}`, private_instance_id: `inst-${port}-${h % 5}` } });
  }
  return out;
}

/** What a lookup says, as comparable text: the route key and its endpoints, or "-". */
function answer(pool: RoutePool | undefined): string {
  if (pool === undefined) return "-";
  const endpoints = pool.endpoints.map((e) => `${e.key}/${e.instanceId}`).sort();
  return `${pool.key} [${endpoints.join(" ")}]`;
}

function request(h: number): [string, string] {
  return h % 10 === 0 ? [`x.w${h}.race.test`, "/"] : h % 10 === 1 ? [`h${h}.race.test`, `/api/v${h % 3}/deep`] : [`h${h}.race.test`, "/"];
}

interface RaceData {
  share: RouteTableShare;
  matcher: MatcherShare;
  applied: Int32Array;
  stop: Int32Array;
  seed: number;
  trustEveryRead: boolean;
}

if (isMainThread) {
  const args = process.argv.slice(2);
  const seconds = Number(args[args.indexOf("--seconds") + 1] || 3) || 3;
  const trustEveryRead = args.includes("--no-seqlock");
  const seed = 0x5eed;
  const matcher = loadWasmMatcherSync(process.env.SKIFF_MATCHER_WASM);
  const registry = new RouteRegistry(matcher, { workerSlots: 2, reserveRoutes: 16 });
  const applied = new Int32Array(new SharedArrayBuffer(4));
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const data: RaceData = { share: registry.share(), matcher: matcher.shareWithReader(), applied, stop, seed, trustEveryRead };
  const worker = new Worker(new URL(import.meta.url), { workerData: data });
  const changes = schedule(seed);
  const started = Date.now();
  let ready = false;
  worker.once("message", () => (ready = true));
  const result = new Promise<unknown>((resolve, reject) => {
    worker.on("message", (m) => typeof m !== "string" && resolve(m));
    worker.on("error", reject);
  });
  // Apply in slices so the worker's messages get through; as fast as the table goes otherwise.
  let i = 0;
  await new Promise<void>((resolve) => {
    const slice = () => {
      if (!ready) return void setTimeout(slice, 5);
      const until = performance.now() + 20;
      while (i < changes.length && performance.now() < until) {
        const c = changes[i]!;
        // what the router does between two changes (decoding the next message: ~2 µs), here idle
        for (const next = performance.now() + 0.002; performance.now() < next; );
        registry.atomically(() => {
          if (c.register) registry.register(c.msg, 0);
          else registry.unregister(c.msg);
          applied[0] = ++i; // inside the same write as the change
        });
      }
      if (i < changes.length && Date.now() - started < seconds * 1000) return void setImmediate(slice);
      Atomics.store(stop, 0, 1);
      resolve();
    };
    slice();
  });
  const report = (await result) as Record<string, number>;
  console.log(JSON.stringify({ ...report, changes: i, routes: registry.stats().routes }));
  await worker.terminate();
} else {
  const data = workerData as RaceData;
  const matcher = WasmMatcherReader.attach(data.matcher);
  const table = new RouteTableReader(data.share, matcher, 1);
  if (data.trustEveryRead) {
    // the negative control: every read is believed, as if there were no seqlock
    table.lock.readBegin = () => 0;
    table.lock.readValid = () => true;
  }
  const changes = schedule(data.seed);
  const local = new RouteRegistry(new ReferenceMatcher(), { reserveRoutes: 16 });
  let replayed = 0;
  let checks = 0;
  let mismatches = 0;
  const examples: string[] = [];
  let x = 12345;
  parentPort!.postMessage("ready");
  while (Atomics.load(data.stop, 0) === 0) {
    x = (x * 1103515245 + 12345) >>> 0;
    const h = x % HOSTS;
    const [host, path] = request(h);
    // One read section for the lookup, the pool's endpoints and the applied count: the answer and
    // the count belong to one state of the table.
    let got = "";
    let at = 0;
    for (;;) {
      const seq = table.lock.readBegin();
      const pool = table.lookup(host, path);
      got = answer(pool);
      at = data.applied[0]!;
      if (table.lock.readValid(seq)) break;
    }
    while (replayed < at) {
      const c = changes[replayed++]!;
      if (c.register) local.register(c.msg, 0);
      else local.unregister(c.msg);
    }
    const want = answer(local.lookup(host, path));
    checks++;
    if (got !== want) {
      mismatches++;
      if (examples.length < 3) examples.push(`${host}${path} after ${at}: got ${got}, want ${want}`);
    }
  }
  parentPort!.postMessage({ checks, mismatches, retries: table.retries, traps: matcher.traps, examples });
}
