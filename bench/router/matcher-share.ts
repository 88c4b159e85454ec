// Issue 16's choice for the WASM matcher with N worker threads, measured: one table in a shared
// WebAssembly.Memory (one writer instance, a reader instance per worker: what the router does) against
// one private table per worker, each applying every change. For each: memory at N routes for 1 and 8
// workers, the cost of one change across all workers, and lookups from a worker thread (hot: 1,000
// hosts cycled, mostly answered by the JS answer cache; uniform: random hosts over the whole table,
// past that cache, so most miss the CPU caches in the table).
//
//   ./node_modules/.bin/bun bench/router/matcher-share.ts [--quick] [--routes 1000000]
//
// Runs itself under Node (the router's runtime): Bun bundles this file and starts node on it.
// Results: bench/results/router-matcher-share.{json,md}.

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const routeCount = args.includes("--routes") ? Number(args[args.indexOf("--routes") + 1]) : quick ? 50_000 : 1_000_000;
const WORKERS_SHOWN = 8;
const CHANGES = quick ? 5_000 : 100_000;
const LOOKUPS = quick ? 200_000 : 2_000_000;

const hostOf = (i: number) => `load-${i}.load.skiff.localhost`;

interface LookupTimes {
  hotNs: number;
  uniformNs: number;
}

/** ns per lookup of `lookup` over a hot set (1,000 hosts cycled) and a uniform one (random over the table, uncached) */
function time(lookup: (host: string) => number, uncached: (host: string) => number, n: number): LookupTimes {
  const hot = Array.from({ length: 1000 }, (_, i) => hostOf((i * 7919) % n));
  let x = 1;
  const uniform = Array.from({ length: 100_000 }, () => hostOf((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n));
  let sum = 0;
  for (let i = 0; i < 200_000; i++) sum += lookup(hot[i % hot.length]!) + uncached(uniform[i % uniform.length]!); // warm-up
  let t = performance.now();
  for (let i = 0; i < LOOKUPS; i++) sum += lookup(hot[i % hot.length]!);
  const hotNs = ((performance.now() - t) * 1e6) / LOOKUPS;
  t = performance.now();
  for (let i = 0; i < LOOKUPS; i++) sum += uncached(uniform[i % uniform.length]!);
  const uniformNs = ((performance.now() - t) * 1e6) / LOOKUPS;
  if (sum === 42) console.log(""); // keep the lookups
  return { hotNs: Math.round(hotNs * 10) / 10, uniformNs: Math.round(uniformNs * 10) / 10 };
}

async function main(): Promise<void> {
  const { loadWasmMatcherSync } = await import("../../router/src/matcher/wasm-matcher.ts");
  const { TableSeqlock } = await import("../../router/src/route/table-seqlock.ts");
  const path = process.env.SKIFF_MATCHER_WASM!;

  // the shared table, as the router has it
  const shared = loadWasmMatcherSync(path);
  let t = performance.now();
  for (let i = 0; i < routeCount; i++) shared.insert(hostOf(i), i);
  const sharedLoadS = (performance.now() - t) / 1000;
  const sharedBytes = shared.linearMemoryBytes;
  // Each measured in a fresh worker thread of its own: a private table (the alternative: the worker
  // builds its own copy, then looks up in it and applies changes), and a reader of the shared table.
  const control = TableSeqlock.newControl();
  const inWorker = <T>(data: object) =>
    new Promise<T>((resolvePromise, reject) => {
      const w = new Worker(new URL(import.meta.url), { workerData: { ...data, routeCount, path } });
      w.once("message", (m: T) => {
        resolvePromise(m);
        void w.terminate();
      });
      w.once("error", reject);
    });
  const priv = await inWorker<{ times: LookupTimes; bytes: number; loadS: number; changeUs: number }>({ role: "private" });
  const privateBytes = priv.bytes;
  const privateLoadS = priv.loadS;
  const changeUs = priv.changeUs;
  const privateTimes = priv.times;
  const readerTimes = await inWorker<LookupTimes>({ role: "reader", share: shared.shareWithReader(), control });
  const writerTimes = time((h) => shared.lookup(h, "/"), (h) => shared.lookupUncached(h, "/"), routeCount);

  const mib = (b: number) => Math.round((b / 1048576) * 10) / 10;
  const readerOverhead = 64 * 1024 + 16 * 1024; // a reader's stack and its input buffer + scratch, in the shared memory
  const rows: (string | number)[][] = [
    ["one shared table (the router)", mib(sharedBytes), mib(sharedBytes + readerOverhead), mib(sharedBytes + WORKERS_SHOWN * readerOverhead), Math.round(changeUs * 100) / 100, Math.round(changeUs * 100) / 100, readerTimes.hotNs, readerTimes.uniformNs],
    ["a private table per worker", mib(privateBytes), mib(privateBytes), mib(WORKERS_SHOWN * privateBytes), Math.round(changeUs * 100) / 100, Math.round(WORKERS_SHOWN * changeUs * 100) / 100, privateTimes.hotNs, privateTimes.uniformNs],
  ];
  // the report is written by the Bun side (bench/lib/report.ts finds the checkout from its own path)
  console.log(`RESULT ${JSON.stringify({
    bench: "router-matcher-share",
    command: `./node_modules/.bin/bun bench/router/matcher-share.ts${quick ? " --quick" : ""}${args.includes("--routes") ? ` --routes ${routeCount}` : ""}`,
    quick,
    tables: [
      {
        title: `The WASM matcher with N workers: one shared table or one per worker (${routeCount.toLocaleString("en-US")} routes)`,
        columns: ["design", "matcher MiB, the table", "MiB with 1 worker", `MiB with ${WORKERS_SHOWN} workers`, "µs per change, 1 worker", `µs per change, ${WORKERS_SHOWN} workers`, "hot lookup ns (worker thread)", "uniform lookup ns (worker thread)"],
        rows,
        notes:
          `Linear memory of the matcher instance(s) after inserting ${routeCount.toLocaleString("en-US")} routes one at a time (shared: ${sharedLoadS.toFixed(1)} s, private: ${privateLoadS.toFixed(1)} s). ` +
          `A change is an insert or a remove (${CHANGES.toLocaleString("en-US")} of each, timed on one table); with private tables every worker applies each one, in its own thread: the CPU adds up over the workers, and each worker's view of the table lags by its own queue. ` +
          `Lookups: ${LOOKUPS.toLocaleString("en-US")} each, host only ("/"), each design in a fresh worker thread: the shared table through a reader instance, each lookup inside a seqlock read (two Atomics.load); the private one by the thread that built it; the writer's own lookups on the shared table (the main thread, after loading): hot ${writerTimes.hotNs} ns, uniform ${writerTimes.uniformNs} ns. One run on a machine shared with other work: compare within the table.`,
        charts: [],
      },
    ],
    figures: {
      routes: routeCount,
      "shared.matcher_mib": mib(sharedBytes),
      "private.matcher_mib": mib(privateBytes),
      [`shared.mib_${WORKERS_SHOWN}_workers`]: mib(sharedBytes + WORKERS_SHOWN * readerOverhead),
      [`private.mib_${WORKERS_SHOWN}_workers`]: mib(WORKERS_SHOWN * privateBytes),
      "change_us": Math.round(changeUs * 100) / 100,
      "shared.reader_hot_ns": readerTimes.hotNs,
      "shared.reader_uniform_ns": readerTimes.uniformNs,
      "shared.writer_hot_ns": writerTimes.hotNs,
      "shared.writer_uniform_ns": writerTimes.uniformNs,
      "private.hot_ns": privateTimes.hotNs,
      "private.uniform_ns": privateTimes.uniformNs,
    },
  })}`);
}

async function inWorkerThread(): Promise<void> {
  const { loadPrivateWasmMatcherSync, WasmMatcherReader } = await import("../../router/src/matcher/wasm-matcher.ts");
  const data = workerData as { role: "private" | "reader"; share: import("../../router/src/matcher/wasm-matcher.ts").MatcherShare; control: Int32Array; routeCount: number; path: string };
  if (data.role === "private") {
    const own = loadPrivateWasmMatcherSync(data.path);
    let t = performance.now();
    for (let i = 0; i < data.routeCount; i++) own.insert(hostOf(i), i);
    const loadS = (performance.now() - t) / 1000;
    const bytes = own.linearMemoryBytes;
    const times = time((h) => own.lookup(h, "/"), (h) => own.lookupUncached(h, "/"), data.routeCount);
    // the cost of one change (a new route, then its removal) on one table
    t = performance.now();
    for (let i = 0; i < CHANGES; i++) own.insert(`churn-${i}.load.skiff.localhost`, data.routeCount + i);
    for (let i = 0; i < CHANGES; i++) own.remove(`churn-${i}.load.skiff.localhost`);
    const changeUs = ((performance.now() - t) * 1000) / (2 * CHANGES);
    parentPort!.postMessage({ times, bytes, loadS, changeUs });
    return;
  }
  const m = WasmMatcherReader.attach(data.share);
  const c = data.control;
  const bracketed = (look: (h: string) => number) => (h: string) => {
    for (;;) {
      const seq = Atomics.load(c, 0);
      const id = look(h);
      if (Atomics.load(c, 0) === seq) return id;
    }
  };
  parentPort!.postMessage(time(bracketed((h) => m.lookup(h, "/")), bracketed((h) => m.lookupUncached(h, "/")), data.routeCount));
}

if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") {
  // under Bun: bundle this file and run it under Node, the router's runtime
  const dir = mkdtempSync(join(tmpdir(), "skiff-matcher-share-"));
  try {
    const root = resolve(import.meta.dir, "../..");
    const bundle = join(dir, "matcher-share.mjs");
    execFileSync(join(root, "node_modules/.bin/bun"), ["build", join(root, "bench/router/matcher-share.ts"), "--target=node", "--outfile", bundle, "--format=esm"], { stdio: "inherit" });
    const out = execFileSync("node", [bundle, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, SKIFF_MATCHER_WASM: process.env.SKIFF_MATCHER_WASM ?? join(root, "wasm/dist/matcher.wasm") } });
    const line = out.split("\n").find((l) => l.startsWith("RESULT "));
    if (!line) throw new Error(`matcher-share: no result from node:\n${out}`);
    const { writeReport } = await import("../lib/report.ts");
    const written = writeReport(JSON.parse(line.slice("RESULT ".length)));
    console.log(execFileSync("cat", [written.md], { encoding: "utf8" }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else if (isMainThread) {
  await main();
} else {
  await inWorkerThread();
}
