// Shared set-up for the router's integration suites: builds the real bundle, starts a real
// nats-server, the router under Node, and Bun.serve backends on free ports; raw-socket requests for
// the cases fetch cannot express.

import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { connect, createServer, type Server as NetServer, type Socket } from "node:net";
import { join, resolve } from "node:path";
import { connectBus, createLogger, Subjects, type Bus, type RouterRegister } from "../../bus/index.ts";
import { startNatsServer, type NatsServer } from "../support/nats-server.ts";
import { startProcess, stopAllProcesses, type TestProcess } from "../support/processes.ts";

export const root = resolve(import.meta.dir, "../..");
/** SKIFF_ROUTER_TEST_WASM: the matcher.wasm to run an older bundle with (the boundary changed with it, issue 16) */
const testWasm = process.env.SKIFF_ROUTER_TEST_WASM ? resolve(process.env.SKIFF_ROUTER_TEST_WASM) : undefined;

/** Bundles router/main.ts exactly as the set-up does, into a file of its own (inside the repo, so
 * Node resolves uWebSockets.js from node_modules). SKIFF_ROUTER_TEST_BUNDLE names a bundle built
 * elsewhere instead (an older commit's, to see a regression test fail there); it is left in place. */
export function buildRouter(): string {
  if (process.env.SKIFF_ROUTER_TEST_BUNDLE) return resolve(process.env.SKIFF_ROUTER_TEST_BUNDLE);
  sweepDeadRunsBundles();
  const outfile = join(root, "router", "dist", `.test-${process.pid}-${Math.random().toString(36).slice(2, 8)}.mjs`);
  execFileSync(join(root, "node_modules/.bin/bun"), ["build", join(root, "router/main.ts"), "--target=node", "--outfile", outfile, "--external", "uWebSockets.js", "--format=esm"], {
    stdio: "pipe",
  });
  return outfile;
}

/** Removes the bundles of test runs that were killed before their suites' end (their pid is gone). */
function sweepDeadRunsBundles(): void {
  const dist = join(root, "router", "dist");
  if (!existsSync(dist)) return;
  for (const name of readdirSync(dist)) {
    const pid = /^\.test-(\d+)-[a-z0-9]+\.mjs$/.exec(name)?.[1];
    if (pid && !existsSync(`/proc/${pid}`)) rmSync(join(dist, name), { force: true });
  }
}

export interface RunningRouter {
  process: TestProcess;
  port: number;
  statusPort: number;
  url: string;
  statusUrl: string;
  /** the status port's basic-auth header value (/routes, /metrics) */
  auth: string;
}

/** The router's /metrics text, read with its status credentials (issue 24: /metrics wants them). */
export async function metricsText(r: RunningRouter): Promise<string> {
  const res = await fetch(`${r.statusUrl}/metrics`, { headers: { authorization: r.auth } });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/** Starts the router on OS-assigned ports (port 0) unless `env` names ports; the ports come from its
 * `ready` line, so no free port can be taken by someone else between choosing and listening. */
export async function startRouter(bundle: string, nats: NatsServer, env: Record<string, string> = {}): Promise<RunningRouter> {
  const process = startProcess("router", "node", [bundle], {
    env: {
      SKIFF_NATS_URL: nats.url,
      SKIFF_ROUTER_PORT: "0",
      SKIFF_ROUTER_STATUS_PORT: "0",
      SKIFF_ROUTER_STATUS_USER: "admin",
      SKIFF_ROUTER_STATUS_PASS: "secret",
      SKIFF_ROUTER_DRAIN_SECONDS: "1",
      SKIFF_MATCHER_WASM: testWasm ?? join(root, "wasm/dist/matcher.wasm"),
      ...env,
    },
  });
  const ready = await process.waitForLine(/ready/);
  const ports = parseReadyPorts(ready);
  const port = ports.port;
  const statusPort = ports.statusPort;
  return {
    process,
    port,
    statusPort,
    url: `http://127.0.0.1:${port}`,
    statusUrl: `http://127.0.0.1:${statusPort}`,
    auth: "Basic " + Buffer.from("admin:secret").toString("base64"),
  };
}

/** `info  router: ready port=<n> status_port=<n> …` → the ports actually bound. */
export function parseReadyPorts(line: string): { port: number; statusPort: number } {
  const port = /\bport=(\d+)/.exec(line);
  const statusPort = /\bstatus_port=(\d+)/.exec(line);
  if (!port || !statusPort) throw new Error(`no ports in the router's ready line: ${line}`);
  return { port: Number(port[1]), statusPort: Number(statusPort[1]) };
}

/** A backend's router.register: the backend is on 127.0.0.1 unless `host` says otherwise. */
export type RouteRegistration = Partial<RouterRegister> & { port: number; uris: string[] };

export interface Harness {
  nats: NatsServer;
  bus: Bus;
  bundle: string;
  /** Publishes a router.register and flushes it to nats-server (the routers still have to receive it). */
  register(msg: RouteRegistration): Promise<void>;
  stop(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const bundle = buildRouter();
  const nats = await startNatsServer();
  const bus = await connectBus({ servers: [nats.url], name: "router-test" }, createLogger("test", "warn"));
  return {
    nats,
    bus,
    bundle,
    async register(msg) {
      bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", ...msg });
      await bus.flush();
    },
    async stop() {
      await bus.close().catch(() => {});
      await nats.stop();
      if (!process.env.SKIFF_ROUTER_TEST_BUNDLE) rmSync(bundle, { force: true });
    },
  };
}

/** A suite's end: every process it started stopped, then its raw backends closed, then the harness. */
export async function stopSuite(h: Harness | undefined, servers: NetServer[] = []): Promise<void> {
  await stopAllProcesses();
  for (const s of servers) s.close();
  await h?.stop();
}

/** Sends raw bytes and collects what comes back until the server closes or `waitMs` passes. */
export function rawRequest(port: number, data: string | Buffer, waitMs = 1000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed });
    }, waitMs);
    socket.on("data", (d) => (text += d.toString("latin1")));
    socket.on("error", () => {});
    socket.on("close", () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text, closed });
    });
    socket.write(data);
  });
}

/** The headers of a request as a plain object (names in lower case), as a recording backend keeps them. */
export function headersOf(req: Request): Record<string, string> {
  const headers: Record<string, string> = {};
  req.headers.forEach((v, k) => (headers[k] = v));
  return headers;
}

/** Polls until a request to `host` gets the wanted status (route changes travel over NATS). */
export async function waitForStatus(url: string, host: string, status: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    last = (await fetch(url, { headers: { host } })).status;
    if (last === status) return;
    await Bun.sleep(25);
  }
  throw new Error(`${host} answered ${last}, not ${status}, within ${timeoutMs} ms`);
}

/** A raw TCP backend: `onRequest` gets the socket once a request head has arrived (the head without
 * its blank line, and the bytes that came after it; a handler reading a body removes the `data`
 * listeners and reads on). The server is pushed onto `servers` to close. */
export async function rawBackend(servers: NetServer[], onRequest: (socket: Socket, head: string, rest: Buffer) => void): Promise<{ port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    let buf: Buffer = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
        const head = buf.subarray(0, end).toString("latin1");
        buf = buf.subarray(end + 4);
        onRequest(socket, head, buf); // may take the socket over (remove this listener) to read a body
        if (!socket.listeners("data").includes(onData)) return;
      }
    };
    socket.on("data", onData);
    socket.on("error", () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { port: (server.address() as { port: number }).port, sockets };
}

/**
 * A TCP listener that never accepts: a Node child listening with a backlog of 1, stopped (SIGSTOP)
 * before it can accept, its accept queue then filled. Linux drops further SYNs, so a connect to it
 * stays pending until it times out: an instance that "never connects". Stopped by pid with SIGKILL.
 */
export async function unacceptingListener(): Promise<{ port: number; close(): void }> {
  const { spawn } = await import("node:child_process");
  const child = spawn("node", ["-e", "const s = require('net').createServer(); s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => console.log(s.address().port));"], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve(Number(out.trim()));
    });
    child.once("exit", (code) => reject(new Error(`the listener exited (${code}) before it listened`)));
  });
  process.kill(child.pid!, "SIGSTOP");
  const fillers: Socket[] = [];
  // the queue holds backlog + 1 connections; a few more make sure it is full
  for (let i = 0; i < 4; i++) {
    const s = connect(port, "127.0.0.1");
    s.on("error", () => {});
    fillers.push(s);
  }
  await Bun.sleep(100);
  return {
    port,
    close() {
      for (const s of fillers) s.destroy();
      try {
        process.kill(child.pid!, "SIGKILL");
      } catch {}
    },
  };
}
