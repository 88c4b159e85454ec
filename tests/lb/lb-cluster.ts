// Real processes for the load-balancer tests: a nats-server, one app instance (lb-backend.cjs), two
// routers built from the checked-out source, and nginx or HAProxy running a block of
// docs/load-balancers.md. Routes are re-registered every second, as agents do, so a router started
// again on its old ports serves them within a second.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Subjects } from "../../bus/index.ts";
import { connect, createServer } from "node:net";
import { eventually, freePort } from "../support/ports.ts";
import { startProcess, type TestProcess } from "../support/processes.ts";
import { startHarness, startRouter, type Harness, type RunningRouter } from "../router/router-harness.ts";
import { docConfig, nginxMainConfig, placeConfig, repoRoot, type Placement } from "./lb-configs.ts";

export const LB_HOST = "lb.skiff.localhost";

/**
 * What every router of these tests runs with: the drain shortened from 20 s to 4 s (still longer than
 * the HAProxy block's detection, fall 2 × inter 1 s + a check), and one proxy worker, so that each
 * router has one idle-close timer (every worker runs its own) and the idle race can aim at it.
 */
export const LB_ROUTER_ENV = { SKIFF_ROUTER_DRAIN_SECONDS: "4", SKIFF_ROUTER_WORKERS: "1" } as const;

export interface LbCluster {
  harness: Harness;
  routers: RunningRouter[];
  backend: TestProcess;
  dir: string;
  /** the TLS files a front end terminates with (a self-signed certificate for the test) */
  tls: { cert: string; key: string; pem: string };
  /** Starts router `i` again on its old ports (after a drain or a kill) and waits until it routes. */
  restartRouter(i: number): Promise<RunningRouter>;
  stop(): Promise<void>;
}

export async function startLbCluster(routerEnv: Record<string, string> = {}): Promise<LbCluster> {
  const harness = await startHarness();
  const dir = mkdtempSync(join(tmpdir(), "skiff-lb-"));
  const backend = startProcess("lb-backend", "node", [join(repoRoot, "tests/lb/lb-backend.cjs")]);
  const backendPort = Number(/port=(\d+)/.exec(await backend.waitForLine(/^ready port=/))![1]);
  const register = () => harness.bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: backendPort, uris: [LB_HOST] });
  const registrar = setInterval(register, 1000);
  const env = { ...LB_ROUTER_ENV, ...routerEnv };
  const routers = await Promise.all([0, 1].map(async () => startRouter(harness.bundle, harness.nats, { ...env, ...(await fixedRouterPorts()) })));
  register();
  await Promise.all(routers.map(routes));
  const tls = selfSignedCertificate(dir);
  return {
    harness,
    routers,
    backend,
    dir,
    tls,
    async restartRouter(i) {
      const old = routers[i]!;
      const again = await startRouter(harness.bundle, harness.nats, { ...env, SKIFF_ROUTER_PORT: String(old.port), SKIFF_ROUTER_STATUS_PORT: String(old.statusPort) });
      await routes(again);
      routers[i] = again;
      return again;
    },
    async stop() {
      clearInterval(registrar);
      await Promise.all(routers.map((r) => r.process.stop("SIGKILL")));
      await backend.stop("SIGKILL");
      await harness.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Ports for a router that is started again on them later: outside the kernel's ephemeral range, as a
 * router's 8080/8081 are. A port in that range (what port 0 hands out) can be taken as the source port
 * of an outgoing connection (a front end's, wrk's) as soon as its router stops, and then nobody can
 * listen on it until that connection is gone.
 */
export async function fixedRouterPorts(): Promise<{ SKIFF_ROUTER_PORT: string; SKIFF_ROUTER_STATUS_PORT: string }> {
  const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
  const floor = 10_000;
  const ceiling = Math.max(floor + 1000, low ?? 32_768);
  const pick = async (): Promise<number> => {
    for (;;) {
      const port = floor + Math.floor(Math.random() * (ceiling - floor));
      if (await isFree(port)) return port;
    }
  };
  const port = await pick();
  let statusPort = await pick();
  while (statusPort === port) statusPort = await pick();
  return { SKIFF_ROUTER_PORT: String(port), SKIFF_ROUTER_STATUS_PORT: String(statusPort) };
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "0.0.0.0", () => srv.close(() => resolve(true)));
  });
}

/** Waits until a router serves the test's route (its table comes over NATS). */
async function routes(r: RunningRouter): Promise<void> {
  await eventually(async () => ((await fetch(`${r.url}/`, { headers: { host: LB_HOST } })).status === 200 ? true : undefined), 15_000, `router on ${r.port} to route ${LB_HOST}`);
}

function selfSignedCertificate(dir: string): { cert: string; key: string; pem: string } {
  const cert = join(dir, "lb.crt");
  const key = join(dir, "lb.key");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=lb.skiff.localhost", "-days", "2"], { stdio: "ignore" });
  const pem = join(dir, "lb.pem");
  writeFileSync(pem, execFileSync("cat", [cert, key]));
  return { cert, key, pem };
}

export interface FrontEnd {
  /** the doc block's name */
  name: string;
  kind: "nginx" | "haproxy";
  port: number;
  tlsPort?: number;
  url: string;
  process: TestProcess;
  /** the configuration file as run */
  config: string;
}

/**
 * Starts nginx or HAProxy on a doc block (`nginx…` blocks are nginx's http context, `haproxy…` blocks
 * whole HAProxy files) in front of `behind.routers` (the block's router 1 and 2), on ports the OS
 * picked, and waits until it accepts connections. `tls` adds the block's TLS listener.
 */
export async function startFrontEnd(
  behind: { routers: { port: number; statusPort: number }[]; dir: string; tls?: LbCluster["tls"] },
  name: string,
  opts: { tls?: boolean } = {},
): Promise<FrontEnd> {
  const kind = name.startsWith("nginx") ? "nginx" : "haproxy";
  const [port, tlsPort] = await Promise.all([freePort(), opts.tls ? freePort() : Promise.resolve(undefined)]);
  const routers = behind.routers.map((r) => ({ port: r.port, statusPort: r.statusPort }));
  const where: Placement = { listen: port, tlsListen: tlsPort, routers, tls: opts.tls ? behind.tls : undefined };
  const placed = placeConfig(docConfig(name), where);
  const dir = join(behind.dir, `${name}-${port}`);
  mkdirSync(dir, { recursive: true });
  let proc: TestProcess;
  let config: string;
  if (kind === "nginx") {
    config = join(dir, "nginx.conf");
    writeFileSync(config, nginxMainConfig(placed, dir));
    proc = startProcess(name, "nginx", ["-c", config, "-p", dir]);
  } else {
    config = join(dir, "haproxy.cfg");
    writeFileSync(config, placed);
    proc = startProcess(name, "haproxy", ["-f", config, "-db"]);
  }
  await eventually(
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`${name} exited (${proc.child.exitCode}): ${proc.output().slice(-2000)}`);
      return (await canConnect(port)) ? true : undefined;
    },
    10_000,
    `${name} to listen`,
  );
  return { name, kind, port, tlsPort, url: `http://127.0.0.1:${port}`, process: proc, config };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}
