// Builds the controller's HTTP API from its route groups, maps every error to Cloud Foundry's
// `{errors: [...]}` shape, and serves an OpenAPI document derived from the route schemas.

import { Elysia } from "elysia";
import { appRoutes } from "./apps-routes.ts";
import { processRoutes } from "./process-routes.ts";
import { taskRoutes } from "./task-routes.ts";
import { bitsRoutes } from "./bits-routes.ts";
import type { ControllerContext } from "./context.ts";
import { authenticate } from "./auth.ts";
import { ApiError, badRequest, errorResponse } from "./errors.ts";
import { MAX_BODY_DEPTH, nestedDeeperThan } from "./body-depth.ts";
import { logsRoutes } from "./logs-routes.ts";
import { orgRoutes } from "./org-routes.ts";
import { routeRoutes } from "./route-routes.ts";
import { serviceRoutes } from "./service-routes.ts";
import { ServiceRequestError } from "../services/service-gateway.ts";
import type { LogRelay } from "../log-relay.ts";
import type { MetricsCollector } from "../metrics/metrics-collector.ts";
import { logStreamRoutes } from "./log-stream-routes.ts";
import { metricsRoutes } from "./metrics-routes.ts";
import { consoleRoutes } from "../../console/console-routes.ts";

function cfError(status: number, code: number, title: string, detail: string): Response {
  return Response.json({ errors: [{ code, title, detail }] }, { status });
}

const SERVICE_ERRORS: Record<ServiceRequestError["status"], [number, string]> = {
  404: [10010, "CF-ResourceNotFound"],
  409: [60016, "CF-AsyncServiceInstanceOperationInProgress"],
  422: [10008, "CF-UnprocessableEntity"],
  502: [10001, "CF-ServiceBrokerBadResponse"],
};

/**
 * Open without a token: `/` (links), `/v3/info`, `/healthz`, `POST /v3/tokens` (login) and
 * `/v3/openapi.json`. The last describes the API's shape, which is public like the source it comes
 * from, and holds no tenant's data; everything that does needs a token. `/internal/v1/*` is for
 * agents and needs a signed URL instead.
 */
export const OPEN_PATHS = ["/", "/v3/info", "/healthz", "/v3/tokens", "/v3/openapi.json"] as const;
// the console (/console/…) checks its own session cookie and then calls this API with its token
const isConsole = (path: string) => path === "/console" || path.startsWith("/console/");
const isOpen = (path: string) => (OPEN_PATHS as readonly string[]).includes(path) || path.startsWith("/internal/") || isConsole(path);

export function buildApi(ctx: ControllerContext, relay: LogRelay, metrics: MetricsCollector) {
  let openapi: unknown;
  let routeTable: () => readonly unknown[] = () => [];
  // the console calls this API in-process; the app it calls is the one being built here
  let handleApi: (request: Request) => Promise<Response> = () => Promise.reject(new Error("the API is not built yet"));
  // the bus's state, for /healthz: a controller cut off from NATS still serves the API, but cannot stage or start
  let bus: "connected" | "disconnected" = "connected";
  ctx.bus.onStatus((st) => {
    if (st.type === "disconnect") bus = "disconnected";
    else if (st.type === "reconnect") bus = "connected";
  });
  const app = new Elysia()
    // the gate: a token before anything else (validation included) for every path not open, so a
    // route added later cannot forget it; handlers then read the user from authenticate's cache
    .onRequest(async ({ request }) => {
      const url = request.url;
      const start = url.indexOf("/", url.indexOf("//") + 2);
      const q = url.indexOf("?", start);
      const path = start < 0 ? "/" : url.slice(start, q < 0 ? undefined : q);
      if (!isOpen(path)) await authenticate(ctx.store, request);
      // Before validation, which recurses into a body: a JSON body nested deeper than any request of the
      // API is a 400 (issue 19: 30,000 levels made Elysia's ValidationError overflow the stack, a 500).
      // Read from a clone here, not in a hook that names `body`: that makes Elysia parse every route's
      // body, the uploads and the console's forms that read their own included.
      if ((request.headers.get("content-type") ?? "").startsWith("application/json") && request.body) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(await request.clone().text());
        } catch {
          return; // not JSON after all: the route's own parsing says so
        }
        if (nestedDeeperThan(parsed)) throw badRequest(`the request body is nested deeper than ${MAX_BODY_DEPTH} levels`);
      }
    })
    .onError(({ code, error }) => {
      if (error instanceof ApiError) return errorResponse(error);
      if (error instanceof ServiceRequestError) {
        const [code, title] = SERVICE_ERRORS[error.status];
        return cfError(error.status, code, title, error.message);
      }
      if (code === "VALIDATION") {
        const v = (error as { valueError?: { path?: string; message?: string } }).valueError;
        const where = v?.path ? `${v.path.replace(/^\//, "").replace(/\//g, ".")}: ` : "";
        return cfError(422, 10008, "CF-UnprocessableEntity", `invalid request: ${where}${v?.message ?? "the body or query does not match the schema"}`);
      }
      if (code === "PARSE") return cfError(400, 10001, "CF-MessageParseError", "the request body is not valid JSON");
      if (code === "NOT_FOUND") return cfError(404, 10000, "CF-NotFound", "unknown endpoint; see GET /v3/openapi.json");
      ctx.log.error("request failed", { error: error as Error });
      return cfError(500, 10001, "UnknownError", "an internal error occurred; the controller's log has the details");
    })
    // a browser asking for / gets the console; API clients the links
    .get("/", ({ request }) => (request.headers.get("accept") ?? "").includes("text/html") ? new Response(null, { status: 303, headers: { location: "/console/" } }) : ({ links: { self: { href: "/" }, info: { href: "/v3/info" }, health: { href: "/healthz" }, openapi: { href: "/v3/openapi.json" }, console: { href: "/console/" } } }))
    .get("/healthz", async ({ set }) => {
      // for a load balancer or a launcher: 200 while the database answers (the API can serve), else 503
      let database = "ok";
      try {
        await ctx.store.db.get("SELECT 1 AS ok");
      } catch (err) {
        database = `failing: ${(err as Error).message}`;
        set.status = 503;
      }
      return { status: database === "ok" ? "ok" : "unavailable", database, bus, version: ctx.version };
    }, { detail: { summary: "Liveness for load balancers (no authentication): 200 while the database answers, 503 when not" } })
    .use(orgRoutes(ctx))
    .use(appRoutes(ctx))
    .use(processRoutes(ctx))
    .use(taskRoutes(ctx))
    .use(bitsRoutes(ctx))
    .use(logsRoutes(ctx, relay))
    .use(routeRoutes(ctx))
    .use(serviceRoutes(ctx))
    .use(metricsRoutes(ctx, metrics))
    .use(logStreamRoutes(ctx, relay))
    .get("/v3/openapi.json", () => (openapi ??= openApiOf(routeTable())), { detail: { summary: "This document" } })
    .use(consoleRoutes(ctx, (request) => handleApi(request)));
  routeTable = () => app.routes;
  handleApi = (request) => app.handle(request);
  return app;
}

interface RouteInfo {
  method: string;
  path: string;
  hooks?: { body?: unknown; query?: unknown; detail?: { summary?: string } };
}

/** OpenAPI 3.0 from Elysia's route table: paths, summaries, and the TypeBox schemas (already JSON Schema). */
export function openApiOf(routes: readonly unknown[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes as RouteInfo[]) {
    if (r.path === "/" || isConsole(r.path)) continue;
    const path = r.path.replace(/:(\w+)/g, "{$1}");
    const params = [...r.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    const q = r.hooks?.query as { properties?: Record<string, unknown> } | undefined;
    for (const [name, schema] of Object.entries(q?.properties ?? {})) params.push({ name, in: "query", required: false, schema: schema as { type: string } });
    const op: Record<string, unknown> = { summary: r.hooks?.detail?.summary ?? "", parameters: params, responses: { default: { description: "JSON; errors as {errors:[{code,title,detail}]}" } } };
    if (r.hooks?.body) op.requestBody = { required: true, content: { "application/json": { schema: r.hooks.body } } };
    if (path.endsWith("/bits") || path.includes("/droplets/upload/")) op.requestBody = { required: true, content: { "application/gzip": { schema: { type: "string", format: "binary" } } } };
    if (!isOpen(path)) op.security = [{ bearer: [] }];
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: "3.0.3",
    info: { title: "skiff Cloud Controller", version: "3" },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    paths,
  };
}
