// A netns host run the way an operator runs a real one (issue 27): its service manager is
// `skiff-node supervise` (these namespaces have no systemd as PID 1, docs/operations.md), and every
// skiff component on it comes from `skiff-node` commands run in its namespace with `--root <its folder>`.
// Shared by joined.test.ts and cluster.ts (the failure scenarios' cluster).

import { chmodSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { nodeLayout, unitName, type NodeLayout } from "../../ops/node-layout.ts";
import { serviceManagerFor, type ServiceManager } from "../../ops/service-manager.ts";
import type { UnitStatus } from "../../ops/supervisor.ts";
import { isRunning, type Host, type HostProcess } from "./topology.ts";

export const repoRoot = resolve(import.meta.dir, "../..");
const bun = process.execPath;

/** A component's process as its unit runs it: the real process (the supervisor spawns ExecStart itself). */
export interface UnitProcess {
  name: string;
  host: string;
  unit: string;
  pid: number;
  /** its exit code (null: killed by a signal, or gone with its host), as the supervisor saw it */
  exited: Promise<number | null>;
  alive(): boolean;
}

const exitLine = /supervisor: (\S+\.service) \(pid (\d+)\) exited \((\w+)\)/;

export class NodeHost {
  supervisor?: HostProcess;
  readonly layout: NodeLayout;
  /** exit codes the supervisor reported, by pid, and whoever waits for one */
  private readonly exits = new Map<number, number | null>();
  private readonly waiting = new Map<number, ((code: number | null) => void)[]>();

  constructor(
    readonly host: Host,
    readonly root: string,
  ) {
    this.layout = nodeLayout(root);
  }

  get name(): string {
    return this.host.name;
  }

  etc(file: string): string {
    return join(this.layout.etc, file);
  }

  /**
   * "Boots" the host: starts its service manager, which starts every unit enabled on it, and waits
   * until it answers on its socket (a socket file left by a supervisor that was killed does not count).
   */
  async boot(timeoutMs = 20_000): Promise<HostProcess> {
    // modes set, not asked of mkdir: an earlier test in this process may have set umask 077, and the
    // instances' uids pass through these folders to the agents'
    mkdirSync(this.root, { recursive: true });
    chmodSync(this.root, 0o711);
    const p = this.host.spawn(this.name, bun, ["ops/skiff-node.ts", "supervise", "--root", this.root], {}, repoRoot);
    this.supervisor = p;
    let partial = "";
    p.child.stdout!.on("data", (d: Buffer) => {
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        const m = exitLine.exec(line);
        if (m) this.exited(Number(m[2]), /^\d+$/.test(m[3]!) ? Number(m[3]) : null);
      }
    });
    // the host lost: whatever the supervisor ran is gone with it (killAll) and will report no exit
    void p.exited.then(async () => {
      for (const pid of [...this.waiting.keys()]) {
        while (isRunning(pid)) await Bun.sleep(20);
        this.exited(pid, null);
      }
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!p.alive()) throw new Error(`the supervisor on ${this.name} exited:\n${p.output().slice(-3000)}`);
      if (await this.units().then(() => true, () => false)) return p;
      if (Date.now() > deadline) throw new Error(`the supervisor on ${this.name} did not answer within ${timeoutMs} ms:\n${p.output().slice(-3000)}`);
      await Bun.sleep(50);
    }
  }

  private exited(pid: number, code: number | null): void {
    this.exits.set(pid, code);
    for (const resolve of this.waiting.get(pid) ?? []) resolve(code);
    this.waiting.delete(pid);
  }

  private exitOf(pid: number): Promise<number | null> {
    if (this.exits.has(pid)) return Promise.resolve(this.exits.get(pid)!);
    if (this.supervisor && !this.supervisor.alive() && !isRunning(pid)) return Promise.resolve(null);
    return new Promise((resolve) => this.waiting.set(pid, [...(this.waiting.get(pid) ?? []), resolve]));
  }

  /** `skiff-node ARGS --root ROOT` in this host's namespace; its exit code and output. */
  async node(args: string[], timeoutMs = 120_000): Promise<{ code: number; out: string }> {
    const p = Bun.spawn(["ip", "netns", "exec", this.host.ns, bun, "ops/skiff-node.ts", ...args, "--root", this.root], { cwd: repoRoot, stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    const [o, e] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
    clearTimeout(timer);
    return { code: await p.exited, out: o + e };
  }

  /** As node(), and a failure throws with the command's output and the supervisor's last lines. */
  async must(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.node(args, timeoutMs);
    if (r.code !== 0) throw new Error(`skiff-node ${args[0]} on ${this.name} failed (${r.code}):\n${r.out}\n--- supervisor:\n${this.supervisor?.output().slice(-4000)}`);
    return r.out;
  }

  /** What skiff-node itself talks to: this host's supervisor, over its socket (systemctl's place). */
  serviceManager(): ServiceManager {
    return serviceManagerFor(this.layout);
  }

  async units(): Promise<UnitStatus[]> {
    return this.serviceManager().status();
  }

  /**
   * Waits until the component's unit runs a live process that logged `ready`; that process. `notPid`:
   * a process just killed, which the supervisor may still list (and /proc still show) for a moment.
   */
  async ready(component: string, timeoutMs = 60_000, notPid?: number): Promise<UnitProcess> {
    const unit = unitName(component);
    const deadline = Date.now() + timeoutMs;
    let last: UnitStatus | undefined;
    while (Date.now() < deadline) {
      if (this.supervisor && !this.supervisor.alive()) throw new Error(`the supervisor on ${this.name} is gone`);
      last = (await this.units().catch(() => [])).find((u) => u.unit === unit);
      // a process SIGKILLed a moment ago may still be listed until the supervisor reaps it
      if (last?.ready && last.pid && last.pid !== notPid && isRunning(last.pid)) return this.unitProcess(component, last.pid);
      await Bun.sleep(100);
    }
    throw new Error(`${unit} on ${this.name} not ready within ${timeoutMs} ms (${JSON.stringify(last)}):\n${this.supervisor?.output().slice(-3000)}`);
  }

  /** `systemctl start`: an enabled unit that is down (a router stopped by its drain) runs again. */
  async start(component: string, timeoutMs?: number, notPid?: number): Promise<UnitProcess> {
    await this.serviceManager().start(unitName(component));
    return this.ready(component, timeoutMs, notPid);
  }

  unitProcess(component: string, pid: number): UnitProcess {
    return { name: component, host: this.name, unit: unitName(component), pid, exited: this.exitOf(pid), alive: () => isRunning(pid) };
  }

  /** SIGKILL every process of the host, its supervisor with them: the host is lost, nothing restarts. */
  killAll(): number {
    return this.host.killAll();
  }
}
