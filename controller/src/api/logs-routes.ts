// App logs: the agents' ring buffers (`dea.logs.recent`) and the live `logs.<app>` relayed by
// long polling, which is how the CLI shows staging output.

import { Elysia, t } from "elysia";
import { logTag, Subjects, type LogLine } from "../../../bus/index.ts";
import { accessOf, authenticate } from "./auth.ts";
import { loadApp } from "./apps-routes.ts";
import type { ControllerContext } from "./context.ts";
import { badRequest } from "./errors.ts";
import type { LogRelay } from "../log-relay.ts";

/** One line the way `cf logs` prints it. */
export function formatLogLine(l: LogLine): string {
  return `${new Date(l.ts).toISOString()} [${logTag(l)}] ${l.stream === "err" ? "ERR" : "OUT"} ${l.line}`;
}

export function logsRoutes(ctx: ControllerContext, relay: LogRelay) {
  const { store, bus } = ctx;
  return new Elysia({ name: "logs" })
    .get("/v3/apps/:guid/logs/recent", async ({ request, params, query }) => {
      const access = await accessOf(store, await authenticate(store, request));
      const app = await loadApp(ctx, access, params.guid);
      const limit = Math.min(Math.max(Number(query.limit ?? 500) || 500, 1), 10_000);
      const replies = await bus.requestMany(Subjects.deaLogsRecent, "dea.logs.recent", { droplet: app.guid, limit }, "dea.logs.recent.reply", { timeoutMs: ctx.findTimeoutMs });
      const lines = replies.flatMap((r) => r.lines).sort((a, b) => a.ts - b.ts).slice(-limit);
      return { resources: lines };
    }, { query: t.Object({ limit: t.Optional(t.String()) }), detail: { summary: "Recent log lines from every agent's ring buffer" } })

    .get("/v3/apps/:guid/logs/poll", async ({ request, params, query }) => {
      const access = await accessOf(store, await authenticate(store, request));
      const app = await loadApp(ctx, access, params.guid);
      const after = query.after === undefined ? undefined : Number(query.after);
      if (after !== undefined && (!Number.isInteger(after) || after < 0)) throw badRequest("after must be a number from an earlier poll's `next`");
      const waitMs = Math.min(Math.max(Number(query.wait ?? 20) || 0, 0), 25) * 1000;
      const r = await relay.poll(app.guid, after, waitMs);
      return { next: r.next, resources: query.format === "text" ? r.lines.map(formatLogLine) : r.lines };
    }, { query: t.Object({ after: t.Optional(t.String()), wait: t.Optional(t.String()), format: t.Optional(t.Union([t.Literal("json"), t.Literal("text")])) }), detail: { summary: "Long-poll the app's live log: call without `after` to start, then pass the returned `next`" } });
}
