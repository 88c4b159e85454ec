// Builds the controller's HTTP API from its route groups, maps every error to Cloud Foundry's
// `{errors: [...]}` shape, and serves an OpenAPI document derived from the route schemas.

import { Elysia } from "elysia";
import { appRoutes } from "./apps-routes.ts";
import { bitsRoutes } from "./bits-routes.ts";
import type { ControllerContext } from "./context.ts";
import { ApiError } from "./errors.ts";
import { logsRoutes } from "./logs-routes.ts";
import { orgRoutes } from "./org-routes.ts";
import { routeRoutes } from "./route-routes.ts";
import { serviceRoutes } from "./service-routes.ts";
import { ServiceRequestError } from "../services/service-gateway.ts";
import type { LogRelay } from "../log-relay.ts";

function cfError(status: number, code: number, title: string, detail: string): Response {
  return Response.json({ errors: [{ code, title, detail }] }, { status });
}

const SERVICE_ERRORS: Record<ServiceRequestError["status"], [number, string]> = {
  404: [10010, "CF-ResourceNotFound"],
  409: [60016, "CF-AsyncServiceInstanceOperationInProgress"],
  422: [10008, "CF-UnprocessableEntity"],
  502: [10001, "CF-ServiceBrokerBadResponse"],
};

export function buildApi(ctx: ControllerContext, relay: LogRelay) {
  let openapi: unknown;
  let routeTable: () => readonly unknown[] = () => [];
  const app = new Elysia()
    .onError(({ code, error }) => {
      if (error instanceof ApiError) return cfError(error.status, error.code, error.title, error.message);
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
    .get("/", () => ({ links: { self: { href: "/" }, info: { href: "/v3/info" }, openapi: { href: "/v3/openapi.json" } } }))
    .use(orgRoutes(ctx))
    .use(appRoutes(ctx))
    .use(bitsRoutes(ctx))
    .use(logsRoutes(ctx, relay))
    .use(routeRoutes(ctx))
    .use(serviceRoutes(ctx))
    .get("/v3/openapi.json", () => (openapi ??= openApiOf(routeTable())), { detail: { summary: "This document" } });
  routeTable = () => app.routes;
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
    if (r.path === "/") continue;
    const path = r.path.replace(/:(\w+)/g, "{$1}");
    const params = [...r.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    const q = r.hooks?.query as { properties?: Record<string, unknown> } | undefined;
    for (const [name, schema] of Object.entries(q?.properties ?? {})) params.push({ name, in: "query", required: false, schema: schema as { type: string } });
    const op: Record<string, unknown> = { summary: r.hooks?.detail?.summary ?? "", parameters: params, responses: { default: { description: "JSON; errors as {errors:[{code,title,detail}]}" } } };
    if (r.hooks?.body) op.requestBody = { required: true, content: { "application/json": { schema: r.hooks.body } } };
    if (path.endsWith("/bits") || path.includes("/droplets/upload/")) op.requestBody = { required: true, content: { "application/gzip": { schema: { type: "string", format: "binary" } } } };
    if (!path.startsWith("/v3/info") && !path.startsWith("/v3/tokens") && !path.startsWith("/internal/") && path !== "/v3/openapi.json") op.security = [{ bearer: [] }];
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: "3.0.3",
    info: { title: "skiff Cloud Controller", version: "3" },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    paths,
  };
}
