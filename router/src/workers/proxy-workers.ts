// The main thread's side of the proxy workers (issue 16): starts one worker thread per slot on the
// router's port, starts another in a slot whose worker died (after its in-flight counts are zeroed:
// onSlotLost), gathers their counters for /metrics, and stops them in order. A worker that dies
// takes only its own connections with it; the others keep serving the port.

import { Worker } from "node:worker_threads";
import type { Logger } from "../../../bus/index.ts";
import { RouterMetrics } from "../status/router-metrics.ts";
import type { ProxyWorkerData } from "./proxy-worker.ts";
import type { ToMain, ToWorker, WorkerStats } from "./worker-messages.ts";

export interface ProxyWorkersOptions {
  count: number;
  /** the module a worker runs (the router's bundle: main.ts starts a worker when not on the main thread) */
  entry: URL;
  dataFor(slot: number): ProxyWorkerData;
  /** a slot's worker died: what it counted in flight must go before another takes the slot */
  onSlotLost(slot: number): void;
  log: Logger;
}

/** a worker that crashes again soon after its start waits longer each time, up to this */
const MAX_RESTART_DELAY_MS = 5_000;
/** a worker that ran this long before crashing restarts at once */
const STABLE_MS = 10_000;
const STATS_TIMEOUT_MS = 2_000;

interface Slot {
  worker: Worker | undefined;
  startedAt: number;
  /** consecutive quick crashes (restart back-off) */
  quickCrashes: number;
  /** what the slot's dead workers had counted: their counters must not go back to zero */
  retired: RouterMetrics;
  /** the stats a dying worker posted on its way out */
  lastWords: WorkerStats | undefined;
}

export class ProxyWorkers {
  private readonly slots: Slot[];
  private stopping = false;
  private nextId = 0;
  private readonly pending = new Map<number, (stats: WorkerStats) => void>();
  /** workers started again after one died */
  restarts = 0;

  constructor(private readonly opts: ProxyWorkersOptions) {
    this.slots = Array.from({ length: opts.count }, () => ({ worker: undefined, startedAt: 0, quickCrashes: 0, retired: new RouterMetrics(), lastWords: undefined }));
  }

  get count(): number {
    return this.slots.length;
  }

  /** workers running now */
  get live(): number {
    return this.slots.filter((s) => s.worker !== undefined).length;
  }

  /** Starts every worker; resolves once each listens, rejects if one cannot. */
  async start(): Promise<void> {
    await Promise.all(this.slots.map((_, slot) => this.spawn(slot)));
  }

  private spawn(slot: number): Promise<void> {
    const s = this.slots[slot]!;
    const worker = new Worker(this.opts.entry, { workerData: this.opts.dataFor(slot), name: `proxy-${slot}` } as ConstructorParameters<typeof Worker>[1]);
    s.worker = worker;
    s.startedAt = Date.now();
    s.lastWords = undefined;
    return new Promise<void>((resolve, reject) => {
      let listening = false;
      worker.on("message", (m: ToMain) => {
        switch (m.type) {
          case "listening":
            listening = true;
            resolve();
            return;
          case "failed":
            reject(new Error(m.error));
            return;
          case "stats":
            this.pending.get(m.id)?.(m.stats);
            this.pending.delete(m.id);
            return;
          case "crashed":
            this.opts.log.error("proxy worker failed; its connections are closed and another worker takes its slot", { worker: slot, error: m.error });
            s.lastWords = m.stats;
            return;
          case "stopped":
            s.lastWords = m.stats;
            return;
        }
      });
      worker.on("error", (err) => this.opts.log.error("proxy worker error", { worker: slot, error: err.message }));
      worker.on("exit", (code) => {
        if (s.worker !== worker) return;
        s.worker = undefined;
        if (s.lastWords) s.retired.absorb(s.lastWords.metrics);
        if (!listening) return reject(new Error(`proxy worker ${slot} exited (code ${code}) before it listened`));
        if (this.stopping) return;
        this.replace(slot, code);
      });
    });
  }

  private replace(slot: number, code: number): void {
    const s = this.slots[slot]!;
    s.quickCrashes = Date.now() - s.startedAt < STABLE_MS ? s.quickCrashes + 1 : 0;
    const delay = s.quickCrashes === 0 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 100 * 2 ** (s.quickCrashes - 1));
    this.opts.onSlotLost(slot);
    this.opts.log.warn("starting a new proxy worker", { worker: slot, exit_code: code, after_ms: delay });
    setTimeout(() => {
      if (this.stopping) return;
      this.restarts++;
      this.spawn(slot).catch((err) => {
        this.opts.log.error("a new proxy worker could not start; trying again", { worker: slot, error: err instanceof Error ? err.message : String(err) });
        if (!this.stopping && this.slots[slot]!.worker === undefined) this.replace(slot, -1);
      });
    }, delay);
  }

  /** Every slot's stats: its live worker's now (undefined if it did not answer in time) and its dead workers' totals. */
  async stats(): Promise<{ live: (WorkerStats | undefined)[]; retired: RouterMetrics[] }> {
    const live = await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<WorkerStats | undefined>((resolve) => {
            if (!s.worker) return resolve(undefined);
            const id = this.nextId++;
            const timer = setTimeout(() => {
              this.pending.delete(id);
              resolve(undefined);
            }, STATS_TIMEOUT_MS);
            this.pending.set(id, (stats) => {
              clearTimeout(timer);
              resolve(stats);
            });
            this.send(s, { type: "stats", id });
          }),
      ),
    );
    return { live, retired: this.slots.map((s) => s.retired) };
  }

  broadcast(m: ToWorker): void {
    for (const s of this.slots) this.send(s, m);
  }

  /** (tests, SKIFF_ROUTER_FAULT_INJECTION) makes one worker throw from its event loop */
  crash(slot: number): boolean {
    const s = this.slots[slot];
    if (!s?.worker) return false;
    this.send(s, { type: "crash-for-test" });
    return true;
  }

  /** Closes every worker's listen socket (the drain is over; in-flight requests go on). */
  stopAccepting(): void {
    this.broadcast({ type: "stop-accepting" });
  }

  /** Stops every worker (graceful: after what is in flight finished) and waits for their threads to end. */
  async stop(graceful: boolean): Promise<void> {
    this.stopping = true;
    const exits = this.slots.map((s) => (s.worker ? new Promise<void>((resolve) => s.worker!.once("exit", () => resolve())) : Promise.resolve()));
    this.broadcast({ type: "stop", graceful });
    await Promise.all(exits);
  }

  private send(s: Slot, m: ToWorker): void {
    try {
      s.worker?.postMessage(m);
    } catch {
      // the worker is ending: its exit handler does the rest
    }
  }
}
