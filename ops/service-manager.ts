// What skiff-node asks of the host's service manager: systemd through systemctl where it runs, else the
// skiff-node supervisor (supervisor.ts) through its unix socket. Both read the same unit files.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { NodeLayout } from "./node-layout.ts";
import type { UnitStatus } from "./supervisor.ts";

export interface ServiceManager {
  readonly kind: "systemd" | "supervisor";
  /** daemon-reload, enable and start (systemctl enable --now) */
  enableNow(unit: string): Promise<void>;
  /** start an enabled unit that is down (systemctl start) */
  start(unit: string): Promise<void>;
  stop(unit: string): Promise<void>;
  /** stop, and no longer start at boot */
  disable(unit: string): Promise<void>;
  reload(unit: string): Promise<void>;
  restart(unit: string): Promise<void>;
  status(): Promise<UnitStatus[]>;
}

export class ServiceManagerError extends Error {
  override name = "ServiceManagerError";
}

export function serviceManagerFor(layout: NodeLayout): ServiceManager {
  if (layout.root === "/" && existsSync("/run/systemd/system")) return new Systemd();
  if (existsSync(layout.supervisorSocket)) return new SupervisorClient(layout);
  throw new ServiceManagerError(
    `no service manager here: systemd is not running (/run/systemd/system is missing) and no skiff-node supervisor listens on ${layout.supervisorSocket}. ` +
      `Start one with: skiff-node supervise${layout.root === "/" ? "" : ` --root ${layout.root}`}`,
  );
}

class Systemd implements ServiceManager {
  readonly kind = "systemd";
  private run(...args: string[]): string {
    const r = spawnSync("systemctl", args, { encoding: "utf8" });
    if (r.status !== 0) throw new ServiceManagerError(`systemctl ${args.join(" ")} failed: ${r.stderr.trim()}`);
    return r.stdout;
  }
  async enableNow(unit: string) {
    this.run("daemon-reload");
    this.run("enable", "--now", unit);
  }
  async start(unit: string) {
    this.run("start", unit);
  }
  async stop(unit: string) {
    this.run("stop", unit);
  }
  async disable(unit: string) {
    this.run("disable", "--now", unit);
  }
  async reload(unit: string) {
    this.run("reload", unit);
  }
  async restart(unit: string) {
    this.run("restart", unit);
  }
  async status(): Promise<UnitStatus[]> {
    const out = spawnSync("systemctl", ["show", "--property=Id,ActiveState,MainPID,NRestarts", "skiff-*.service"], { encoding: "utf8" }).stdout;
    return out.split("\n\n").filter((b) => b.trim()).map((block) => {
      const f = Object.fromEntries(block.split("\n").map((l) => l.split("=", 2) as [string, string]));
      const unit = f.Id ?? "";
      // "ready": the unit logged its ready line since it started (journal)
      const ready = f.ActiveState === "active" && /\bready\b/i.test(spawnSync("journalctl", ["-u", unit, "-b", "-o", "cat", "-n", "200"], { encoding: "utf8" }).stdout);
      return { unit, active: (f.ActiveState === "active" ? "active" : f.ActiveState === "failed" ? "failed" : f.ActiveState === "activating" ? "activating" : "inactive") as UnitStatus["active"], pid: Number(f.MainPID) || undefined, restarts: Number(f.NRestarts) || 0, ready };
    });
  }
}

class SupervisorClient implements ServiceManager {
  readonly kind = "supervisor";
  constructor(private readonly layout: NodeLayout) {}
  private async call(method: string, path: string): Promise<unknown> {
    const res = await fetch(`http://supervisor${path}`, { method, unix: this.layout.supervisorSocket } as RequestInit);
    if (!res.ok) throw new ServiceManagerError(`the supervisor refused ${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  }
  async enableNow(unit: string) {
    const { mkdirSync, symlinkSync, rmSync } = await import("node:fs");
    mkdirSync(this.layout.wantsDir, { recursive: true });
    const link = join(this.layout.wantsDir, unit);
    rmSync(link, { force: true });
    symlinkSync(join(this.layout.unitDir, unit), link);
    await this.call("POST", "/scan");
    await this.call("POST", `/units/${unit}/start`);
  }
  async start(unit: string) {
    await this.call("POST", `/units/${unit}/start`);
  }
  async stop(unit: string) {
    await this.call("POST", `/units/${unit}/stop`);
  }
  async disable(unit: string) {
    await this.stop(unit);
    const { rmSync } = await import("node:fs");
    rmSync(join(this.layout.wantsDir, unit), { force: true });
  }
  async reload(unit: string) {
    await this.call("POST", `/units/${unit}/reload`);
  }
  async restart(unit: string) {
    await this.call("POST", `/units/${unit}/restart`);
  }
  async status(): Promise<UnitStatus[]> {
    return (await this.call("GET", "/units")) as UnitStatus[];
  }
}

/** The pid a unit runs as, from the supervisor's pid file (tests) */
export function supervisedPid(layout: NodeLayout, unit: string): number | undefined {
  const f = join(layout.runDir, `${unit}.pid`);
  return existsSync(f) ? Number(readFileSync(f, "utf8")) : undefined;
}
