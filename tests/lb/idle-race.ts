// The idle race, made to happen on purpose. uWS 20.30 closes an idle connection by a timer that ticks
// every 4 s: a connection idle for 8-12 s is closed at a tick, and all that expire together close at
// that instant. A load balancer that keeps idle connections longer than that can send a request down
// one at the very moment the router closes it, and the request fails (a 502 from nginx, a closed
// connection from HAProxy). At a low, steady rate that is rare and very hard to trace; this load aims
// at it instead: it learns each router's tick (tick-watch.cjs), then sends waves of requests through
// the front ends, each wave 8-12 s after the one before and a few ms before one router's tick, so the
// connections the previous wave used are exactly the ones expiring. The window a front end leaves open
// is the time it takes to notice a close (tens of µs); the tests widen it by holding the front ends
// still (SIGSTOP) across the tick, as a busy host would, so that a wave hits it every time. POSTs,
// because nginx silently retries a GET that met a closed keep-alive connection (a POST it must not).

import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { startProcess } from "../support/processes.ts";

/** uSockets' timer granularity in this build (LIBUS_TIMEOUT_GRANULARITY): idle sockets close on its ticks. */
export const TICK_MS = 4000;

export interface TickWatch {
  /** resolves once every router's tick has been seen (8-12 s after the start) */
  ready: Promise<void>;
  /** each router's tick, as an instant on this process's performance.now() clock */
  ticks(): number[];
  stop(): Promise<void>;
}

/**
 * Learns each router's idle-close tick from tick-watch.cjs, a process of its own that sees each close
 * at once (this process may be busy when a close arrives, and would see it late). Every close it
 * reports is the tick plus some delay, so the earliest phase over all reports is the best estimate.
 */
export function startTickWatch(ports: number[]): TickWatch {
  const watcher = startProcess("tick-watch", "node", [join(import.meta.dir, "tick-watch.cjs"), ...ports.map(String)]);
  const seen = ports.map(() => [] as number[]);
  let partial = "";
  let onSeen = () => {};
  watcher.child.stdout!.on("data", (d: Buffer) => {
    const lines = (partial + d.toString()).split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      const m = /^tick (\d+) ([\d.]+)$/.exec(line);
      if (!m) continue;
      seen[ports.indexOf(Number(m[1]))]?.push(Number(m[2]) - performance.timeOrigin);
      onSeen();
    }
  });
  const ready = new Promise<void>((resolve) => (onSeen = () => seen.every((s) => s.length > 0) && resolve()));
  return {
    ready,
    ticks: () =>
      seen.map((times) => {
        const first = times[0]!;
        // each report's offset from the first, folded into (-half a tick, +half a tick]; the smallest is the least late
        const earliest = Math.min(...times.map((t) => (((t - first) % TICK_MS) + TICK_MS * 1.5) % TICK_MS - TICK_MS / 2));
        return first + earliest;
      }),
    stop: () => watcher.stop("SIGKILL"),
  };
}

export type Outcome = "ok" | `status ${string}` | "closed without a response";

/** One keep-alive client connection to a front end: one request at a time, reconnecting when the front end closed it while idle. */
class KeepAliveClient {
  private socket: Socket | undefined;
  private buffered = "";
  private waiting: ((o: Outcome) => void) | undefined;

  constructor(private readonly port: number) {}

  send(request: string): Promise<Outcome> {
    if (this.socket === undefined || this.socket.destroyed) this.open();
    this.buffered = "";
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.socket!.write(request);
    });
  }

  close(): void {
    this.socket?.destroy();
  }

  private open(): void {
    const s = connect(this.port, "127.0.0.1");
    s.setNoDelay(true);
    s.on("error", () => {});
    s.on("data", (d) => {
      this.buffered += d.toString("latin1");
      const end = this.buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(this.buffered.slice(0, end))?.[1] ?? 0);
      if (this.buffered.length < end + 4 + length) return;
      const status = this.buffered.slice(9, 12);
      if (/\r\nconnection: *close/i.test(this.buffered.slice(0, end))) s.destroy();
      this.settle(status === "200" ? "ok" : `status ${status}`);
    });
    s.on("close", () => {
      if (this.socket === s) this.socket = undefined;
      this.settle("closed without a response");
    });
    this.socket = s;
  }

  private settle(o: Outcome): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.(o);
  }
}

export interface RaceTally {
  sent: number;
  failed: number;
  outcomes: Record<string, number>;
  /** when each failed request was sent, in ms from the tick its wave aimed at */
  failedAtMs: number[];
}

export interface IdleRaceOptions {
  /** the front ends' ports, each raced alike in every wave */
  frontEnds: Record<string, number>;
  /** each router's tick instant, as it is known now (TickWatch.ticks) */
  ticks: () => number[];
  /** keep-alive clients per front end (each sends one request per wave) */
  clients: number;
  /** waves aimed at a tick (after one first wave that only makes the connections) */
  waves: number;
  host: string;
  /** the wave's requests are spread over this many ms… */
  spreadMs?: number;
  /** …starting this many ms before the tick */
  leadMs?: number;
  /** requests each front end gets at the same instant (a burst keeps the front end busy while the router's closes arrive) */
  burst?: number;
  /**
   * The front ends' pids, to stop (SIGSTOP) from 5 ms before the wave to 10 ms after the tick, as a
   * busy host would hold them: the wave's requests then wait in their sockets before the router's
   * closes arrive, and a front end takes them first. This widens the race window from the tens of µs
   * a front end needs to notice a close (which only ms-exact aim hits) to the whole pause.
   */
  pause?: number[];
  /** called after every wave, with the instant it aimed at and how long the connections it met had idled */
  onWave?: (wave: { router: number; at: number; idleMs: number; tallies: Record<string, RaceTally> }) => void;
}

/**
 * Runs the waves and tallies every request per front end. A wave at router r's tick follows the
 * previous wave by 8-12 s so that the connections the front ends hold to r (used by that wave) expire
 * exactly then; the waves alternate between the routers.
 */
export async function runIdleRace(opts: IdleRaceOptions): Promise<Record<string, RaceTally>> {
  const spread = opts.spreadMs ?? 4;
  const names = Object.keys(opts.frontEnds);
  const clients = names.map((n) => Array.from({ length: opts.clients }, () => new KeepAliveClient(opts.frontEnds[n]!)));
  const tallies: Record<string, RaceTally> = Object.fromEntries(names.map((n) => [n, { sent: 0, failed: 0, outcomes: {}, failedAtMs: [] }]));
  const request = `POST /slow/idle-race HTTP/1.1\r\nHost: ${opts.host}\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello`;
  let tick = 0;
  const send = (i: number, c: KeepAliveClient) => {
    const sentAt = performance.now() - tick;
    return c.send(request).then((o) => {
      const t = tallies[names[i]!]!;
      t.sent++;
      t.outcomes[o] = (t.outcomes[o] ?? 0) + 1;
      if (o === "ok") return;
      t.failed++;
      t.failedAtMs.push(Math.round(sentAt * 100) / 100);
    });
  };
  /** one wave: every client of every front end, `burst` of each front end's at a time, the bursts spread over `spread` ms from `start` */
  const burst = opts.burst ?? 1;
  const wave = async (start: number) => {
    const sends: Promise<void>[] = [];
    const slots = Math.ceil(opts.clients / burst);
    for (let slot = 0; slot < slots; slot++) {
      const when = start + (slot * spread) / slots;
      while (performance.now() < when) {} // ms precision: a timer would be late by more than the race window
      for (let k = slot * burst; k < Math.min(opts.clients, (slot + 1) * burst); k++) names.forEach((_, i) => sends.push(send(i, clients[i]![k]!)));
    }
    await Promise.all(sends);
  };
  // the first tick of router r at or after instant t
  const tickAfter = (r: number, t: number) => {
    const tick = opts.ticks()[r]!;
    return tick + Math.ceil((t - tick) / TICK_MS) * TICK_MS;
  };
  try {
    await wave(performance.now());
    let last = performance.now();
    for (let w = 0; w < opts.waves; w++) {
      const r = w % opts.ticks().length;
      // a connection last used at `last` expires on the third tick after the one before `last`
      const at = tickAfter(r, last + 0.001) + 2 * TICK_MS;
      await Bun.sleep(Math.max(0, at - performance.now() - 25));
      tick = at;
      const start = at - (opts.leadMs ?? spread * 0.75);
      if (opts.pause) {
        while (performance.now() < start - 5) {}
        for (const pid of opts.pause) process.kill(pid, "SIGSTOP");
      }
      const sent = wave(start);
      if (opts.pause) {
        while (performance.now() < at + 10) {}
        for (const pid of opts.pause) process.kill(pid, "SIGCONT");
      }
      await sent;
      opts.onWave?.({ router: r, at, idleMs: at - last, tallies });
      // the connections' idle time starts when their last response ended
      last = performance.now();
    }
  } finally {
    for (const list of clients) for (const c of list) c.close();
  }
  return tallies;
}
