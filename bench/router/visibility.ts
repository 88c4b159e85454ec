// How soon a route change is served by every worker (issue 16: within 5 ms at p99, also under 1,000
// changes/s): the bench publishes a router.register for a new host and polls it through one keep-alive
// connection per worker until it answers 200, then a router.unregister until 404. A connection stays
// with the worker that accepted it; which worker that is, is found once from the per-worker request
// counter in /metrics. The time is from the publish (so it includes NATS's delivery) to the first
// answer that shows the change, at the resolution of one request round trip.

import { connect, type Socket } from "node:net";
import { Subjects, type Bus } from "../../bus/index.ts";

/** One keep-alive connection, one request at a time, responses framed by Content-Length. */
export class KeepAlive {
  private readonly socket: Socket;
  private text = "";
  private waiting: (() => void) | undefined;

  constructor(port: number) {
    this.socket = connect(port, "127.0.0.1");
    this.socket.setNoDelay(true);
    this.socket.on("data", (d) => {
      this.text += d.toString("latin1");
      this.waiting?.();
    });
    this.socket.on("error", () => {});
  }

  /** GET / with this Host: the status code. */
  async status(host: string): Promise<number> {
    this.text = "";
    this.socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    for (;;) {
      const end = this.text.indexOf("\r\n\r\n");
      if (end >= 0) {
        const len = Number(/content-length: (\d+)/i.exec(this.text.slice(0, end))?.[1] ?? 0);
        if (this.text.length >= end + 4 + len) return Number(this.text.slice(9, 12));
      }
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer from the router for ${host}`)), 10_000);
        this.waiting = () => {
          clearTimeout(timer);
          this.waiting = undefined;
          resolve();
        };
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Requests served by each worker slot, from /metrics. */
async function perWorker(statusPort: number, auth: Record<string, string>): Promise<number[]> {
  const text = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`, { headers: auth })).text();
  const out: number[] = [];
  for (const m of text.matchAll(/skiff_router_worker_requests_total\{worker="(\d+)"\} (\d+)/g)) out[Number(m[1])] = Number(m[2]);
  return out;
}

/** One connection to each of `workers` workers (connections are opened until every worker has one). */
export async function connectionPerWorker(port: number, statusPort: number, auth: Record<string, string>, knownHost: string, workers: number): Promise<KeepAlive[]> {
  const found: (KeepAlive | undefined)[] = new Array(workers).fill(undefined);
  const spare: KeepAlive[] = [];
  let before = await perWorker(statusPort, auth);
  for (let tries = 0; found.some((c) => c === undefined) && tries < 40 * workers; tries++) {
    const c = new KeepAlive(port);
    if ((await c.status(knownHost)) !== 200) throw new Error(`${knownHost} did not answer 200`);
    const after = await perWorker(statusPort, auth);
    const slot = after.findIndex((v, i) => v !== (before[i] ?? 0));
    before = after;
    if (slot >= 0 && found[slot] === undefined) found[slot] = c;
    else spare.push(c);
  }
  for (const c of spare) c.close();
  if (found.some((c) => c === undefined)) throw new Error(`could not reach every one of ${workers} workers`);
  return found as KeepAlive[];
}

export interface VisibilitySamples {
  /** ms from publishing router.register to a 200 at each worker, one sample per probe and worker */
  register: number[];
  /** ms from publishing router.unregister to a 404 at each worker */
  unregister: number[];
}

/** `probes` new hosts, each registered then unregistered, polled through every worker's connection. */
export async function measureVisibility(bus: Bus, conns: KeepAlive[], backendPort: number, probes: number, tag: string): Promise<VisibilitySamples> {
  const out: VisibilitySamples = { register: [], unregister: [] };
  const until = async (host: string, status: number, t0: number, into: number[]) => {
    await Promise.all(
      conns.map(async (c) => {
        while ((await c.status(host)) !== status);
        into.push(performance.now() - t0);
      }),
    );
  };
  for (let k = 0; k < probes; k++) {
    const host = `vis-${tag}-${k}.visibility.skiff.localhost`;
    const msg = { host: "127.0.0.1", port: backendPort, uris: [host], app: "vis", private_instance_id: `vis-${k}`, private_instance_index: "0" };
    let t0 = performance.now();
    bus.publish(Subjects.routerRegister, "router.register", msg);
    await until(host, 200, t0, out.register);
    t0 = performance.now();
    bus.publish(Subjects.routerUnregister, "router.unregister", msg);
    await until(host, 404, t0, out.unregister);
    await new Promise((r) => setTimeout(r, 5)); // probes apart, so each meets the churn at a different moment
  }
  return out;
}
