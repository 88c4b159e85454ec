// GET /v3/apps/:guid/logs/stream: an app's log as Server-Sent Events, for browsers (the console's
// tail): first the recent lines from the agents' ring buffers (dea.logs.recent), then the live
// `logs.<app>` lines from the same relay `skiff logs` long-polls, in batches (one event per ~100 ms
// at most, so 1,000 lines/s is ten events). `sources=APP,RTR,…` keeps only those sources.

import { Elysia, t } from "elysia";
import { LogSources, Subjects, type LogLine } from "../../../bus/index.ts";
import type { LogRelay } from "../log-relay.ts";
import { loadApp } from "./apps-routes.ts";
import { accessOf, authenticate } from "./auth.ts";
import type { ControllerContext } from "./context.ts";
import { badRequest } from "./errors.ts";

const BATCH_MS = 100;
const KEEPALIVE_MS = 15_000;

const lineKey = (l: LogLine) => `${l.ts}\0${l.source}\0${l.index}\0${l.stream}\0${l.line}`;

export function logStreamRoutes(ctx: ControllerContext, relay: LogRelay) {
  const { store, bus } = ctx;
  return new Elysia({ name: "log-stream" }).get("/v3/apps/:guid/logs/stream", async ({ request, params, query }) => {
    const access = await accessOf(store, await authenticate(store, request));
    const app = await loadApp(ctx, access, params.guid);
    const sources = query.sources ? new Set(query.sources.split(",").map((s) => s.trim().toUpperCase())) : undefined;
    for (const s of sources ?? []) if (!(LogSources as readonly string[]).includes(s)) throw badRequest(`unknown log source ${s}: use ${LogSources.join(", ")}`);
    const recentLimit = Math.min(Math.max(Number(query.recent ?? 200) || 0, 0), 1000);
    const keep = (l: LogLine) => !sources || sources.has(l.source);

    // the live position first, so nothing falls between the recent lines and the live ones
    let next = (await relay.poll(app.guid, undefined, 0)).next;
    let closed = false;
    const enc = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        const send = (event: string, data: unknown) => {
          if (!closed) controller.enqueue(enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
        };
        try {
          const replies = recentLimit === 0 ? [] : await bus.requestMany(Subjects.deaLogsRecent, "dea.logs.recent", { droplet: app.guid, limit: recentLimit }, "dea.logs.recent.reply", { timeoutMs: ctx.findTimeoutMs });
          const recent = replies.flatMap((r) => r.lines).sort((a, b) => a.ts - b.ts).filter(keep).slice(-recentLimit);
          const overlap = new Set(recent.map(lineKey));
          const lastRecentTs = recent.length ? recent[recent.length - 1]!.ts : 0;
          send("recent", { lines: recent });
          while (!closed) {
            const r = await relay.poll(app.guid, next, KEEPALIVE_MS);
            // lines the relay's ring had already let go of (more than it keeps arrived between two polls)
            const skipped = Math.max(0, r.next - r.lines.length - next);
            next = r.next;
            const lines = r.lines.filter((l) => keep(l) && !(l.ts <= lastRecentTs && overlap.has(lineKey(l))));
            if (lines.length || skipped) send("lines", { lines, skipped });
            else if (!closed) controller.enqueue(enc.encode(": keep-alive\n\n"));
            await Bun.sleep(BATCH_MS);
          }
        } catch (err) {
          if (!closed) {
            send("error", { detail: (err as Error).message });
            controller.close();
          }
        }
      },
      cancel() {
        closed = true;
      },
    });
    request.signal?.addEventListener?.("abort", () => (closed = true));
    return new Response(stream, { headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" } });
  }, {
    query: t.Object({ sources: t.Optional(t.String()), recent: t.Optional(t.String()) }),
    detail: { summary: "The app's log as Server-Sent Events: recent lines first (event `recent`), then live batches (event `lines`); sources=APP,STG,RTR,HEALTH,CELL filters" },
  });
}
