// A stand-in for systemd where it cannot run (the netns test hosts: no systemd as PID 1 here). It reads
// the same unit files skiff-node writes for systemd and keeps to their meaning: starts the enabled units
// in After= order, restarts on failure after RestartSec (a clean exit or SIGTERM/SIGINT is not a
// failure), stops in reverse order with KillSignal then SIGKILL after TimeoutStopSec, ExecReload's
// SIGHUP. Output goes to its own stdout, one `unit| line` each (journald's place), and to a log file.
// skiff-node talks to it over a unix socket, as systemctl talks to systemd.

import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NodeLayout } from "./node-layout.ts";
import { parseEnvFile, parseUnit, type ParsedUnit } from "./units.ts";

export interface UnitStatus {
  unit: string;
  active: "active" | "activating" | "inactive" | "failed";
  pid?: number;
  restarts: number;
  /** the unit logged `ready` since its last start */
  ready: boolean;
  startedAt?: number;
}

interface Running {
  unit: ParsedUnit;
  child?: ChildProcess;
  wanted: boolean;
  stopping: boolean;
  restarts: number;
  ready: boolean;
  failed: boolean;
  /** exited and not to be restarted (a clean exit, a failure with Restart=no): stays down until started */
  settled: boolean;
  startedAt?: number;
  restartTimer?: ReturnType<typeof setTimeout>;
  exited?: Promise<void>;
}

const cleanSignals = new Set(["SIGTERM", "SIGINT", "SIGHUP", "SIGPIPE"]);

export class Supervisor {
  private readonly units = new Map<string, Running>();
  private readonly order: string[] = [];
  private scanTimer?: ReturnType<typeof setInterval>;

  constructor(
    private readonly layout: NodeLayout,
    private readonly write: (line: string) => void = (l) => process.stdout.write(l + "\n"),
  ) {}

  /** Enabled units: the files linked (or copied) into multi-user.target.wants, like systemd's `enable`. */
  enabled(): string[] {
    if (!existsSync(this.layout.wantsDir)) return [];
    return readdirSync(this.layout.wantsDir).filter((n) => n.startsWith("skiff-") && n.endsWith(".service")).sort();
  }

  /** systemd's daemon-reload + start of what is newly enabled; what is no longer enabled stops. */
  async scan(): Promise<void> {
    const enabled = this.enabled();
    for (const name of enabled) {
      const text = readFileSync(join(this.layout.unitDir, name), "utf8");
      const unit = parseUnit(name, text);
      const r = this.units.get(name);
      if (r) r.unit = unit;
      else this.units.set(name, { unit, wanted: true, stopping: false, restarts: 0, ready: false, failed: false, settled: false });
    }
    for (const name of this.startOrder(enabled)) {
      const r = this.units.get(name)!;
      if (!r.child && r.wanted && !r.restartTimer && !r.settled) this.launch(r);
    }
    for (const [name, r] of this.units) if (!enabled.includes(name) && r.child) await this.stop(name);
  }

  /** Units ordered so that each comes after the units it names in After=. */
  private startOrder(names: string[]): string[] {
    const out: string[] = [];
    const visit = (n: string, depth = 0) => {
      if (out.includes(n) || depth > 20) return;
      for (const dep of this.units.get(n)?.unit.after ?? []) if (names.includes(dep)) visit(dep, depth + 1);
      out.push(n);
    };
    for (const n of names) visit(n);
    return out;
  }

  private launch(r: Running): void {
    const u = r.unit;
    const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };
    if (u.environmentFile && existsSync(u.environmentFile)) Object.assign(env, parseEnvFile(readFileSync(u.environmentFile, "utf8")));
    const [cmd, ...args] = u.execStart;
    const child = spawn(cmd!, args, { cwd: u.workingDirectory, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    r.child = child;
    r.ready = false;
    r.startedAt = Date.now();
    if (!this.order.includes(u.name)) this.order.push(u.name);
    mkdirSync(this.layout.runDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.layout.logDir, { recursive: true, mode: 0o700 });
    if (child.pid) writeFileSync(join(this.layout.runDir, `${u.name}.pid`), String(child.pid));
    const logFile = join(this.layout.logDir, u.name.replace(/\.service$/, ".log"));
    const tag = u.name.replace(/^skiff-|\.service$/g, "");
    let partial = "";
    const onData = (d: Buffer) => {
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (/\bready\b/i.test(line)) r.ready = true;
        this.write(`${tag}| ${line}`);
        appendFileSync(logFile, line + "\n", { mode: 0o600 });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("error", (err) => this.write(`${tag}| supervisor: cannot start ${cmd}: ${err.message}`));
    r.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        r.child = undefined;
        r.ready = false;
        rmSync(join(this.layout.runDir, `${u.name}.pid`), { force: true });
        const clean = code === 0 || (signal !== null && cleanSignals.has(signal));
        this.write(`${tag}| supervisor: ${u.name} (pid ${child.pid}) exited (${signal ?? code})${r.stopping ? "" : clean ? "" : ", a failure"}`);
        const again = r.wanted && !r.stopping && (u.restart === "always" || (u.restart === "on-failure" && !clean));
        r.failed = !clean && !again;
        r.settled = !again;
        if (again) {
          r.restarts++;
          r.restartTimer = setTimeout(() => {
            r.restartTimer = undefined;
            if (r.wanted && !r.child) this.launch(r);
          }, u.restartSec * 1000);
        }
        resolve();
      }),
    );
  }

  async start(name: string): Promise<void> {
    const r = this.units.get(name);
    if (!r) return this.scan();
    r.wanted = true;
    r.failed = false;
    r.settled = false;
    r.stopping = false;
    if (!r.child && !r.restartTimer) this.launch(r);
  }

  /** KillSignal to the main process, SIGKILL to its group after TimeoutStopSec (KillMode=mixed). */
  async stop(name: string): Promise<void> {
    const r = this.units.get(name);
    if (!r) return;
    r.wanted = false;
    if (r.restartTimer) clearTimeout(r.restartTimer), (r.restartTimer = undefined);
    const child = r.child;
    if (!child?.pid) return;
    r.stopping = true;
    try {
      process.kill(child.pid, r.unit.killSignal);
    } catch {}
    const killer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {}
    }, r.unit.timeoutStopSec * 1000);
    await r.exited;
    clearTimeout(killer);
    // whatever it left in its group goes with it (KillMode=mixed)
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
    r.stopping = false;
  }

  async restart(name: string): Promise<void> {
    await this.stop(name);
    await this.start(name);
  }

  reload(name: string): boolean {
    const r = this.units.get(name);
    if (!r?.child?.pid || !r.unit.reloadSignal) return false;
    process.kill(r.child.pid, r.unit.reloadSignal);
    return true;
  }

  status(): UnitStatus[] {
    return [...this.units.values()].map((r) => ({
      unit: r.unit.name,
      active: r.child ? (r.ready ? "active" : "activating") : r.failed ? "failed" : r.restartTimer ? "activating" : "inactive",
      pid: r.child?.pid,
      restarts: r.restarts,
      ready: r.ready,
      startedAt: r.startedAt,
    }));
  }

  /** Everything, in reverse start order (After= reversed), as systemd stops at shutdown. */
  async stopAll(): Promise<void> {
    if (this.scanTimer) clearInterval(this.scanTimer);
    for (const name of [...this.order].reverse()) await this.stop(name);
  }

  /** Serves systemctl-like requests on the unix socket and rescans the enabled units every second. */
  serve(): { stop(): void } {
    mkdirSync(this.layout.runDir, { recursive: true, mode: 0o700 });
    rmSync(this.layout.supervisorSocket, { force: true });
    const server = Bun.serve({
      unix: this.layout.supervisorSocket,
      fetch: async (req) => {
        const url = new URL(req.url);
        if (req.method === "GET" && url.pathname === "/units") return Response.json(this.status());
        const m = /^\/units\/([A-Za-z0-9_.@-]+)\/(start|stop|restart|reload)$/.exec(url.pathname);
        if (req.method === "POST" && url.pathname === "/scan") return await this.scan(), Response.json({ ok: true });
        if (req.method !== "POST" || !m) return new Response("not found", { status: 404 });
        const [, name, action] = m as unknown as [string, string, "start" | "stop" | "restart" | "reload"];
        if (action === "reload") return Response.json({ ok: this.reload(name) });
        await this[action](name);
        return Response.json({ ok: true });
      },
    });
    this.scanTimer = setInterval(() => void this.scan().catch((err) => this.write(`supervisor| scan failed: ${err.message}`)), 1000);
    return { stop: () => server.stop(true) };
  }
}
