// /v3/apps/:guid/tasks and /v3/tasks (issue 17), in Cloud Foundry v3's shape: run a one-off command
// from the app's current droplet, list an app's tasks, get one, cancel one.

import { Elysia, t } from "elysia";
import type { AppRecord } from "../db/store.ts";
import type { TaskRecord } from "../tasks/task-store.ts";
import { TaskError } from "../tasks/task-tracker.ts";
import { loadApp } from "./apps-routes.ts";
import { accessOf, authenticate, type Access } from "./auth.ts";
import type { ControllerContext } from "./context.ts";
import { badRequest, notFound, unprocessable } from "./errors.ts";
import { paginated, parsePage } from "./present.ts";

const iso = (ms: number) => new Date(ms).toISOString();

export function presentTask(task: TaskRecord) {
  return {
    guid: task.guid,
    sequence_id: task.sequence_id,
    name: task.name,
    command: task.command,
    state: task.state,
    memory_in_mb: task.memory_mb,
    disk_in_mb: task.disk_mb,
    result: { failure_reason: task.failure_reason },
    // skiff: how it ended, and where it ran
    exit_status: task.exit_status,
    agent: task.agent_id,
    droplet_guid: task.droplet_guid,
    created_at: iso(task.created_at),
    updated_at: iso(task.updated_at),
    relationships: { app: { data: { guid: task.app_guid } } },
    links: {
      self: { href: `/v3/tasks/${task.guid}` },
      app: { href: `/v3/apps/${task.app_guid}` },
      cancel: { href: `/v3/tasks/${task.guid}/actions/cancel`, method: "POST" },
      droplet: task.droplet_guid ? { href: `/v3/droplets/${task.droplet_guid}` } : null,
    },
  };
}

const actorOf = (a: Access) => ({ guid: a.user.guid, name: a.user.username });

export function taskRoutes(ctx: ControllerContext) {
  const { store } = ctx;
  const auth = async (request: Request) => accessOf(store, await authenticate(store, request));
  const tasks = ctx.tasks.tasks;

  async function loadTask(access: Access, guid: string, write = false): Promise<{ app: AppRecord; task: TaskRecord }> {
    const task = await tasks.byGuid(guid);
    if (!task) throw notFound("Task");
    const app = await loadApp(ctx, access, task.app_guid, write).catch((err) => {
      throw (err as { status?: number }).status === 403 ? err : notFound("Task");
    });
    return { app, task };
  }

  return new Elysia({ name: "tasks" })
    .post("/v3/apps/:guid/tasks", async ({ request, params, body, set }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid, true);
      try {
        const task = await ctx.tasks.create(actorOf(access), app, { command: body.command, name: body.name, memory_mb: body.memory_in_mb, disk_mb: body.disk_in_mb });
        set.status = 202;
        return presentTask(task);
      } catch (err) {
        if (err instanceof TaskError) throw unprocessable(err.message);
        throw err;
      }
    }, {
      body: t.Object({
        command: t.String({ minLength: 1, maxLength: 4096 }),
        name: t.Optional(t.String({ minLength: 1, maxLength: 63 })),
        memory_in_mb: t.Optional(t.Integer({ minimum: 16, maximum: 65536 })),
        disk_in_mb: t.Optional(t.Integer({ minimum: 16, maximum: 262144 })),
      }),
      detail: { summary: "Run a task: a one-off command from the app's current droplet, with its env and bound services (202; follow its state)" },
    })

    .get("/v3/apps/:guid/tasks", async ({ request, params, query }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid);
      const page = parsePage(query);
      const states = query.states ? query.states.split(",") : undefined;
      if (query.sequence_ids) {
        const ids = query.sequence_ids.split(",").map(Number);
        if (ids.some((n) => !Number.isInteger(n) || n < 1)) throw badRequest("sequence_ids must be whole numbers");
        const found = (await Promise.all(ids.map((n) => tasks.bySequence(app.guid, n)))).filter((x): x is TaskRecord => !!x);
        return paginated(`/v3/apps/${app.guid}/tasks`, page, found.length, found.map(presentTask));
      }
      const { total, tasks: list } = await tasks.ofApp(app.guid, { states, limit: page.perPage, offset: (page.page - 1) * page.perPage });
      return paginated(`/v3/apps/${app.guid}/tasks`, page, total, list.map(presentTask));
    }, {
      query: t.Object({ page: t.Optional(t.String()), per_page: t.Optional(t.String()), states: t.Optional(t.String()), sequence_ids: t.Optional(t.String()) }),
      detail: { summary: "An app's tasks, oldest first (filters: states, sequence_ids)" },
    })

    .get("/v3/tasks/:guid", async ({ request, params }) => presentTask((await loadTask(await auth(request), params.guid)).task), { detail: { summary: "Get a task" } })

    .post("/v3/tasks/:guid/actions/cancel", async ({ request, params, set }) => {
      const access = await auth(request);
      const { app, task } = await loadTask(access, params.guid, true);
      try {
        const canceled = await ctx.tasks.cancel(actorOf(access), app, task);
        set.status = 202;
        return presentTask(canceled);
      } catch (err) {
        if (err instanceof TaskError) throw unprocessable(err.message);
        throw err;
      }
    }, { detail: { summary: "Cancel a task: CANCELING until its agent stops it, then FAILED" } });
}
