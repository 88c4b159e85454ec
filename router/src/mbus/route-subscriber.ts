// Keeps the route table in step with the bus (gorouter's mbus/): router.register/unregister applied,
// router.start published at boot and after every reconnect, router.greet answered, pruning
// suspended while cut off from NATS.

import { Subjects, type Bus, type Logger, type RouterRegister, type RouterStart, type Subscription } from "../../../bus/index.ts";
import type { RouteRegistry } from "../registry/route-registry.ts";
import { ChangeQueue, REGISTER, UNREGISTER } from "./change-queue.ts";

/** Longest stretch of table changes applied in one turn of the event loop, so a burst of
 * registrations never holds requests up for long. */
const APPLY_BUDGET_MS = 1;

export interface RouteSubscriberOptions {
  id: string;
  hosts: string[];
  minimumRegisterIntervalSeconds: number;
  pruneThresholdSeconds: number;
  now?: () => number;
}

export class RouteSubscriber {
  private subs: Subscription[] = [];
  private readonly now: () => number;
  /** changes as they came off the bus: decoding and validation wait for the slice that applies them */
  private readonly queue = new ChangeQueue();
  private scheduled = false;
  /** changes that passed validation but threw while applied, by subject (exported in /metrics) */
  readonly applyErrors: Record<string, number> = {};
  /** how long each change waited between its arrival and its application (which every worker sees at once) */
  readonly delays = new ChangeDelays();

  constructor(
    private readonly bus: Bus,
    private readonly registry: RouteRegistry,
    private readonly opts: RouteSubscriberOptions,
    private readonly log: Logger,
  ) {
    this.now = opts.now ?? Date.now;
  }

  get startMessage(): RouterStart {
    return {
      id: this.opts.id,
      hosts: this.opts.hosts,
      minimumRegisterIntervalInSeconds: this.opts.minimumRegisterIntervalSeconds,
      pruneThresholdInSeconds: this.opts.pruneThresholdSeconds,
    };
  }

  start(): void {
    const { bus, registry } = this;
    this.subs.push(
      bus.subscribeRaw(Subjects.routerRegister, (data) => this.enqueue(REGISTER, data)),
      bus.subscribeRaw(Subjects.routerUnregister, (data) => this.enqueue(UNREGISTER, data)),
      bus.subscribe(Subjects.routerGreet, "router.greet", (_msg, meta) => {
        if (meta.reply) bus.publish(meta.reply, "router.start", this.startMessage);
      }),
    );
    bus.onStatus((s) => {
      if (s.type === "disconnect") {
        registry.suspendPruning();
        this.log.warn("pruning suspended while disconnected from NATS");
      } else if (s.type === "reconnect") {
        registry.resumePruning(this.now());
        this.publishStart();
      }
    });
    this.publishStart();
  }

  /**
   * Changes wait here in arrival order and are decoded, validated and applied in slices of at most
   * APPLY_BUDGET_MS: decoding is most of a registration's cost, so it is kept off the request path too.
   */
  private enqueue(op: typeof REGISTER | typeof UNREGISTER, data: Uint8Array): void {
    this.queue.push(op, data, performance.now());
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drain);
    }
  }

  private readonly drain = (): void => {
    const deadline = performance.now() + APPLY_BUDGET_MS;
    const { queue } = this;
    let n = 0;
    while (queue.length > 0) {
      const arrived = queue.peekArrival();
      this.apply(queue.peekOp(), queue.data());
      queue.shift();
      this.delays.record(performance.now() - arrived);
      if ((++n & 15) === 0 && performance.now() > deadline) break;
    }
    if (queue.length > 0) return void setImmediate(this.drain);
    this.scheduled = false;
  };

  /**
   * One change. A throw from the table on a message that passed validation (a bug, or a matcher
   * refusing a key) is counted and logged with its subject: it must neither crash the router from a
   * setImmediate nor leave the queue marked as scheduled and so stop applying every later change.
   */
  private apply(op: number, data: Uint8Array): void {
    const register = op === REGISTER;
    const subject = register ? Subjects.routerRegister : Subjects.routerUnregister;
    let msg: RouterRegister | undefined;
    try {
      msg = this.bus.decode(subject, register ? "router.register" : "router.unregister", data);
      if (msg === undefined) return;
      if (register) this.registry.register(msg, this.now());
      else this.registry.unregister(msg);
    } catch (err) {
      this.applyErrors[subject] = (this.applyErrors[subject] ?? 0) + 1;
      this.log.error("route change failed; skipped it and applying the rest", {
        subject,
        error: err instanceof Error ? err.message : String(err),
        ...(msg ? { host: msg.host, port: msg.port, uris: msg.uris.slice(0, 5).join(",") } : {}),
      });
    }
  }

  /** Changes received but not yet applied (for tests and metrics). */
  get pending(): number {
    return this.queue.length;
  }

  publishStart(): void {
    this.bus.publish(Subjects.routerStart, "router.start", this.startMessage);
  }

  stop(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
  }
}

/** The last 4,096 change delays (ms), for percentiles at each scrape. */
export class ChangeDelays {
  private readonly ring = new Float64Array(4096);
  private n = 0;
  /** changes recorded since the last take() */
  private since = 0;

  record(ms: number): void {
    this.ring[this.n++ & 4095] = ms;
    this.since++;
  }

  /** Percentiles of the changes since the last call (at most the last 4,096), and how many there were. */
  take(): { p50: number; p99: number; max: number; count: number } {
    const k = Math.min(this.since, 4096);
    const count = this.since;
    this.since = 0;
    if (k === 0) return { p50: 0, p99: 0, max: 0, count: 0 };
    const sorted = new Float64Array(k);
    for (let i = 0; i < k; i++) sorted[i] = this.ring[(this.n - 1 - i) & 4095]!;
    sorted.sort();
    const at = (q: number) => sorted[Math.min(k - 1, Math.floor(q * k))]!;
    return { p50: at(0.5), p99: at(0.99), max: sorted[k - 1]!, count };
  }
}
