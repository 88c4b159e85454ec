// Hosts on one machine for the cluster tests (issue 10): each host is a network namespace with one
// veth into a bridge that lives in a namespace of its own; the test process joins the bridge through
// one more veth from the root namespace. Addresses come from 198.18.<net>.0/24 (RFC 2544 benchmark
// space, never a private range); nothing anywhere gets a default route through the bridge, so no
// packet can leave the machine. Names carry a per-run id so parallel runs never clash.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stopsToRunBeforeExit } from "../../scripts/stop-request.ts";

export interface HostProcess {
  name: string;
  host: string;
  child: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<number | null>;
  alive(): boolean;
}

function sh(args: string[], allowFail = false): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: "utf8" });
  if (r.status !== 0 && !allowFail) throw new Error(`${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout ?? "";
}

/** The only destinations these tests may send to: loopback and the benchmark range. */
export function assertSafeAddress(ip: string): void {
  if (!/^127\./.test(ip) && !/^198\.(18|19)\./.test(ip)) throw new Error(`refusing to use ${ip}: only 127.0.0.0/8 and 198.18.0.0/15`);
}

export class Host {
  constructor(
    readonly topology: Topology,
    readonly name: string,
    readonly ns: string,
    readonly ip: string,
    readonly link: string, // the host's end of its veth, inside its namespace
  ) {}

  /** Runs a command in this host's namespace as a long-lived process in its own process group. */
  spawn(name: string, command: string, args: string[], env: Record<string, string>, cwd?: string): HostProcess {
    const child = spawn("ip", ["netns", "exec", this.ns, command, ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let out = "";
    const logFile = this.topology.logFile;
    const onData = (d: Buffer) => {
      const text = d.toString();
      out += text;
      if (out.length > 2_000_000) out = out.slice(-1_000_000);
      if (logFile) appendFileSync(logFile, text.replace(/^(?=.)/gm, `${name.padEnd(12)}| `));
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const p: HostProcess = {
      name,
      host: this.name,
      child,
      pid: child.pid!,
      output: () => out,
      exited,
      alive: () => child.exitCode === null && child.signalCode === null,
    };
    this.topology.processes.push(p);
    return p;
  }

  /** Runs a command to completion in this namespace. */
  run(args: string[], allowFail = false): string {
    return sh(["ip", "netns", "exec", this.ns, ...args], allowFail);
  }

  /** Every pid in the namespace (`ip netns pids`): the whole host, whoever started it. */
  pids(): number[] {
    return sh(["ip", "netns", "pids", this.ns], true)
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  }

  /** SIGKILL every process on the host, as if it lost power (its namespace and address stay). */
  killAll(): number {
    const pids = this.pids();
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    return pids.length;
  }

  setLink(up: boolean): void {
    sh(["ip", "-n", this.ns, "link", "set", this.link, up ? "up" : "down"]);
  }
}

export class Topology {
  readonly hosts = new Map<string, Host>();
  readonly processes: HostProcess[] = [];
  readonly bridgeNs: string;
  readonly rootLink: string;
  readonly rootIp: string;
  private torn = false;
  private nextIndex = 0;

  private constructor(
    readonly id: string,
    readonly net: number,
    readonly logFile?: string,
  ) {
    this.bridgeNs = `sk${id}-br`;
    this.rootLink = `sk${id}r`;
    this.rootIp = this.address(1);
  }

  address(n: number): string {
    return `198.18.${this.net}.${n}`;
  }

  /**
   * Makes the bridge namespace and the root namespace's veth into it. The /24 is chosen so that no
   * other route in the root namespace overlaps it (a parallel run picks another).
   */
  static create(opts: { logFile?: string } = {}): Topology {
    const routes = sh(["ip", "-4", "route", "show"]);
    let net = 0;
    for (let i = 0; i < 50 && !net; i++) {
      const candidate = 1 + Math.floor(Math.random() * 254);
      if (!routes.includes(`198.18.${candidate}.`)) net = candidate;
    }
    if (!net) throw new Error("no free 198.18.x.0/24 in the root namespace's routes");
    sweepAbandonedRuns();
    const t = new Topology(randomBytes(3).toString("hex"), net, opts.logFile);
    mkdirSync(ownersDir, { recursive: true });
    writeFileSync(join(ownersDir, t.id), String(process.pid));
    installExitHandlers(t);
    sh(["ip", "netns", "add", t.bridgeNs]);
    sh(["ip", "-n", t.bridgeNs, "link", "set", "lo", "up"]);
    sh(["ip", "-n", t.bridgeNs, "link", "add", "br0", "type", "bridge"]);
    sh(["ip", "-n", t.bridgeNs, "link", "set", "br0", "up"]);
    // the root namespace's door into the bridge: a connected /24 route only, no default route
    const peer = `sk${t.id}rb`;
    sh(["ip", "link", "add", t.rootLink, "type", "veth", "peer", "name", peer]);
    sh(["ip", "link", "set", peer, "netns", t.bridgeNs]);
    sh(["ip", "-n", t.bridgeNs, "link", "set", peer, "master", "br0", "up"]);
    sh(["ip", "addr", "add", `${t.rootIp}/24`, "dev", t.rootLink]);
    sh(["ip", "link", "set", t.rootLink, "up"]);
    return t;
  }

  /** A host: its namespace, loopback up, one veth into the bridge with the next address. */
  addHost(name: string, hostNumber?: number): Host {
    const n = hostNumber ?? 10 + this.nextIndex++;
    const ip = this.address(n);
    assertSafeAddress(ip);
    const ns = `sk${this.id}-${name}`;
    const outer = `sk${this.id}b${n}`;
    const inner = `sk${this.id}h${n}`;
    sh(["ip", "netns", "add", ns]);
    sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    sh(["ip", "link", "add", inner, "type", "veth", "peer", "name", outer]);
    sh(["ip", "link", "set", inner, "netns", ns]);
    sh(["ip", "link", "set", outer, "netns", this.bridgeNs]);
    sh(["ip", "-n", this.bridgeNs, "link", "set", outer, "master", "br0", "up"]);
    sh(["ip", "-n", ns, "link", "set", inner, "name", "eth0"]);
    sh(["ip", "-n", ns, "addr", "add", `${ip}/24`, "dev", "eth0"]);
    sh(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    const host = new Host(this, name, ns, ip, "eth0");
    this.hosts.set(name, host);
    return host;
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /**
   * Stops everything: SIGTERM to what we started, then SIGKILL to every pid in our namespaces, and waits
   * until those processes are gone (zombies included) before the namespaces go: a run that returns from
   * here leaves nothing dying behind it.
   */
  async teardown(graceMs = 3000): Promise<void> {
    if (this.torn) return;
    for (const p of this.processes) if (p.alive()) signalGroup(p.pid, "SIGTERM");
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && this.processes.some((p) => p.alive())) await Bun.sleep(50);
    for (const p of this.processes) if (p.alive()) signalGroup(p.pid, "SIGKILL");
    const pids = [...this.hosts.values()].flatMap((h) => h.pids());
    for (const h of this.hosts.values()) h.killAll();
    await Promise.all(this.processes.map((p) => p.exited));
    // what ran in the namespaces but was not ours to reap is reaped by init, within a couple of seconds
    const gone = Date.now() + 5_000;
    while (Date.now() < gone && pids.some((pid) => existsSync(`/proc/${pid}`))) await Bun.sleep(20);
    this.teardownSync();
  }

  /** Synchronous, for process exit handlers. Idempotent. */
  teardownSync(): void {
    if (this.torn) return;
    this.torn = true;
    for (const p of this.processes) if (p.alive()) signalGroup(p.pid, "SIGKILL");
    for (const h of this.hosts.values()) h.killAll();
    for (const h of this.hosts.values()) sh(["ip", "netns", "del", h.ns], true);
    sh(["ip", "netns", "del", this.bridgeNs], true); // takes every bridge-side veth with it
    sh(["ip", "link", "del", this.rootLink], true);
    rmSync(join(ownersDir, this.id), { force: true });
  }
}

/**
 * What of run `id` is still on the machine: its namespaces and its root veth (the bridge's door).
 * Empty after a teardown; the cluster tests assert that.
 */
export function leftoversOf(id: string): string[] {
  const namespaces = sh(["ip", "netns", "list"], true)
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((n) => n.startsWith(`sk${id}-`));
  const links = sh(["ip", "-o", "link", "show"], true)
    .split("\n")
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && n.startsWith(`sk${id}`));
  return [...namespaces.map((n) => `netns ${n}`), ...links.map((l) => `link ${l}`)];
}

/** Is `pid` running? A zombie (waiting for this machine's init to reap it, which can take seconds) is not. */
export function isRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Each run records its owner pid here, so a later run can clean up after one that was SIGKILLed. */
const ownersDir = join(tmpdir(), "skiff-cluster-netns");

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the namespaces and links of runs whose owner process is gone (never another live run's). */
export function sweepAbandonedRuns(): void {
  if (!existsSync(ownersDir)) return;
  const namespaces = sh(["ip", "netns", "list"], true).split("\n").map((l) => l.split(" ")[0]!).filter(Boolean);
  for (const id of readdirSync(ownersDir)) {
    if (!/^[0-9a-f]{6}$/.test(id)) continue;
    const owner = Number(readFileSync(join(ownersDir, id), "utf8"));
    if (pidAlive(owner)) continue;
    const mine = namespaces.filter((n) => n.startsWith(`sk${id}-`));
    for (const ns of mine)
      for (const pid of sh(["ip", "netns", "pids", ns], true).split(/\s+/).filter(Boolean))
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {}
    for (const ns of mine) sh(["ip", "netns", "del", ns], true);
    sh(["ip", "link", "del", `sk${id}r`], true);
    rmSync(join(ownersDir, id), { force: true });
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {}
  }
}

const live = new Set<Topology>();
let handlersInstalled = false;
function installExitHandlers(t: Topology): void {
  live.add(t);
  if (handlersInstalled) return;
  handlersInstalled = true;
  // A stop request (SIGINT/SIGTERM/SIGHUP, the parent gone) reaches the test run's one handler,
  // tests/support/stop-on-signal.ts, which tears every topology down with everything else the run
  // started before it exits; whatever exits the process, the exit handler runs last.
  stopsToRunBeforeExit.add(teardownAllTopologies);
  process.on("exit", () => {
    for (const x of live) x.teardownSync();
  });
}

/** Tears down every topology of this process that is still up, waiting for their processes. */
export async function teardownAllTopologies(): Promise<void> {
  await Promise.allSettled([...live].map((t) => t.teardown()));
}
