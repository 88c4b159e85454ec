// An app's instances as `skiff app`, the console and `/v3/processes/:guid/stats` show them: what the
// agents answer to dea.find.droplet (with stats), and for every index of every process type that is
// not running, a DOWN, CRASHED or FLAPPING row from the health manager's crash records.

import { Subjects, WEB_PROCESS } from "../../../bus/index.ts";
import type { AppRecord } from "../db/store.ts";
import type { ProcessRecord } from "../db/process-store.ts";
import { webProcessOf } from "../db/process-store.ts";
import type { ControllerContext } from "./context.ts";

export type InstanceRow = Record<string, unknown> & { index: number; state: string; process_type: string };

export async function instanceRows(ctx: ControllerContext, app: AppRecord, processes?: ProcessRecord[]): Promise<InstanceRow[]> {
  const { store } = ctx;
  const procs = processes ?? (await store.processes.of(app.guid));
  if (!procs.length) procs.push(webProcessOf(app));
  const quotasOf = new Map(procs.map((p) => [p.type, { mem: p.memory_mb, disk: p.disk_mb }]));
  const known = ctx.actual.liveOf(app.guid, Date.now()).length;
  const replies = await ctx.bus.requestMany(Subjects.deaFindDroplet, "dea.find.droplet", { droplet: app.guid, include_stats: true }, "dea.find.droplet.reply", {
    timeoutMs: ctx.findTimeoutMs, ...(known > 0 ? { max: known } : {}),
  });
  const crashes = new Map((await store.crashesOf(app.guid)).map((c) => [`${c.process_type}/${c.idx}`, c]));
  const rows: InstanceRow[] = replies
    .filter((r) => r.state !== "STOPPED")
    .map((r) => {
      const type = r.process_type ?? WEB_PROCESS;
      return {
        process_type: type,
        index: r.index, state: r.state, since: r.state_timestamp, instance_id: r.instance, agent: r.dea, version: r.version,
        host: r.stats?.host ?? null, port: r.stats?.port ?? null, uptime: r.stats?.uptime ?? null,
        usage: r.stats?.usage ?? null, quotas: r.stats?.quotas ?? quotasOf.get(type) ?? { mem: app.memory_mb, disk: app.disk_mb },
        crash_count: Number(crashes.get(`${type}/${r.index}`)?.crash_count ?? 0),
      };
    });
  if (app.state === "STARTED") {
    for (const p of procs)
      for (let i = 0; i < p.instances; i++) {
        if (rows.some((r) => r.process_type === p.type && r.index === i && r.state !== "CRASHED")) continue;
        const c = crashes.get(`${p.type}/${i}`);
        rows.push({
          process_type: p.type,
          index: i, state: c ? (Number(c.crash_count) > 3 ? "FLAPPING" : "CRASHED") : "DOWN", since: c ? Number(c.last_crash_at) : null,
          instance_id: null, agent: null, host: null, port: null, uptime: null, usage: null, quotas: { mem: p.memory_mb, disk: p.disk_mb },
          crash_count: Number(c?.crash_count ?? 0), details: c?.last_exit_description ?? null,
          next_restart_at: c ? new Date(Number(c.next_restart_at)).toISOString() : null,
        });
      }
  }
  // web first, then the other types by name; by index and age within a type
  const order = (t: string) => (t === WEB_PROCESS ? "" : t);
  return rows.sort((a, b) => order(a.process_type).localeCompare(order(b.process_type)) || a.index - b.index || Number(a.since ?? 0) - Number(b.since ?? 0));
}
