// The broker's HTTP face: the Open Service Broker API v2.17 routes on Elysia, with basic auth and the
// X-Broker-API-Version check in front. The semantics live in service-broker.ts.

import { Elysia } from "elysia";
import { timingSafeEqual } from "node:crypto";
import { join } from "node:path";
import { createLogger, type Logger } from "../../bus/log.ts";
import { ServiceBroker, type Reply } from "./service-broker.ts";
import { SqliteBrokerStore } from "./sqlite-store.ts";
import type { BrokerStore } from "./store.ts";
import type { Provisioner } from "./types.ts";

/** The oldest API minor version we accept (2.13 brought `context`, 2.14 binding async; CF sends 2.15+). */
export const minimumApiVersion = { major: 2, minor: 13 } as const;
export const apiVersion = "2.17";

export interface BrokerConfig {
  provisioners: Provisioner[];
  /** Basic-auth credentials the platform registered the broker with. */
  credentials: { username: string; password: string };
  /** Defaults to SQLite at `<dataDir>/broker.sqlite`. */
  store?: BrokerStore;
  /** Defaults to `$SKIFF_DATA_DIR/broker` or `./.skiff/broker`. */
  dataDir?: string;
  syncWindowMs?: number;
  log?: Logger;
}

export type BrokerApp = ReturnType<typeof createBroker>;

export function createBroker(config: BrokerConfig) {
  const log = config.log ?? createLogger("broker");
  const store = config.store ?? new SqliteBrokerStore(join(config.dataDir ?? defaultDataDir(), "broker.sqlite"));
  const broker = new ServiceBroker({ provisioners: config.provisioners, store, log, syncWindowMs: config.syncWindowMs });
  const expectedAuth = Buffer.from(`Basic ${btoa(`${config.credentials.username}:${config.credentials.password}`)}`);

  const gate = (request: Request): Response | undefined => {
    const auth = Buffer.from(request.headers.get("authorization") ?? "");
    if (auth.length !== expectedAuth.length || !timingSafeEqual(auth, expectedAuth)) {
      return json({ status: 401, body: { description: "basic authentication with the broker's credentials is required" } }, request, {
        "www-authenticate": 'Basic realm="skiff service broker"',
      });
    }
    const version = request.headers.get("x-broker-api-version");
    const m = version ? /^(\d+)\.(\d+)$/.exec(version.trim()) : null;
    if (!m || Number(m[1]) !== minimumApiVersion.major || Number(m[2]) < minimumApiVersion.minor) {
      return json(
        {
          status: 412,
          body: { description: `X-Broker-API-Version ${version ?? "(missing)"} is not supported; send 2.${minimumApiVersion.minor} or later (this broker implements ${apiVersion})` },
        },
        request,
      );
    }
    return undefined;
  };

  const accepts = (query: Record<string, unknown>) => query.accepts_incomplete === "true";
  // Every handler waits for the restart recovery once; after that the promise is settled and free.
  const answer = async (request: Request, fn: () => Promise<Reply>) => (await broker.recovered, json(await fn(), request));

  return new Elysia({ name: "skiff-broker" })
    .decorate("serviceBroker", broker)
    // Authentication, then the version, before anything else: before routing (an unknown endpoint is 401
    // or 412 before it is 404) and before the body is parsed (malformed JSON from a stranger is 401).
    .onRequest(({ request }) => gate(request))
    .onError(({ code, error, request }) => {
      if (code === "PARSE") return json({ status: 400, body: { description: "the request body is not valid JSON" } }, request);
      if (code === "NOT_FOUND") return json({ status: 404, body: { description: "no such broker endpoint" } }, request);
      log.error("broker request failed", { error: error instanceof Error ? error.message : String(error) });
      return json({ status: 500, body: { description: "the broker failed unexpectedly; see its log" } }, request);
    })
    .onStop(async () => {
      await broker.close();
      await store.close();
    })
    .get("/v2/catalog", ({ request }) => json({ status: 200, body: broker.catalog }, request))
    .put("/v2/service_instances/:id", ({ request, params, query, body }) =>
      answer(request, () => tooDeep(body) ?? broker.provision(params.id, jsonBody(body), accepts(query))),
    )
    .get("/v2/service_instances/:id", ({ request, params, query }) => answer(request, () => broker.fetchInstance(params.id, query)))
    .patch("/v2/service_instances/:id", ({ request, params, query, body }) =>
      answer(request, () => tooDeep(body) ?? broker.update(params.id, jsonBody(body), accepts(query))),
    )
    .delete("/v2/service_instances/:id", ({ request, params, query }) =>
      answer(request, () => broker.deprovision(params.id, query, accepts(query))),
    )
    .get("/v2/service_instances/:id/last_operation", ({ request, params, query }) =>
      answer(request, () => broker.instanceLastOperation(params.id, query)),
    )
    .put("/v2/service_instances/:id/service_bindings/:bid", ({ request, params, query, body }) =>
      answer(request, () => tooDeep(body) ?? broker.bind(params.id, params.bid, jsonBody(body), accepts(query))),
    )
    .get("/v2/service_instances/:id/service_bindings/:bid", ({ request, params, query }) =>
      answer(request, () => broker.fetchBinding(params.id, params.bid, query)),
    )
    .delete("/v2/service_instances/:id/service_bindings/:bid", ({ request, params, query }) =>
      answer(request, () => broker.unbind(params.id, params.bid, query, accepts(query))),
    )
    .get("/v2/service_instances/:id/service_bindings/:bid/last_operation", ({ request, params, query }) =>
      answer(request, () => broker.bindingLastOperation(params.id, params.bid, query)),
    );
}

function json(reply: Reply, request: Request, extra: Record<string, string> = {}): Response {
  const headers: Record<string, string> = { "content-type": "application/json", ...extra };
  const requestId = request.headers.get("x-broker-api-request-identity");
  if (requestId) headers["x-broker-api-request-identity"] = requestId;
  return new Response(JSON.stringify(reply.body), { status: reply.status, headers });
}

/** Deeper than any OSB body (parameters and context are a few levels); the records are cloned and stringified recursively. */
export const MAX_BODY_DEPTH = 32;

/**
 * A 400 for a body nested deeper than MAX_BODY_DEPTH, checked without recursion (issue 19: parameters
 * nested 50,000 deep overflowed the stack while the request was stored, a 500), else undefined.
 */
function tooDeep(body: unknown): Promise<Reply> | undefined {
  const value = jsonBody(body);
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth >= MAX_BODY_DEPTH) {
      return Promise.resolve({ status: 400, body: { description: `the request body is nested deeper than ${MAX_BODY_DEPTH} levels` } });
    }
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (x !== null && typeof x === "object") stack.push([x, depth + 1]);
  }
  return undefined;
}

/** Elysia parses JSON bodies sent as application/json; a body sent without that type arrives as text. */
function jsonBody(body: unknown): unknown {
  if (typeof body !== "string") return body;
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/** `$SKIFF_DATA_DIR/broker`, else `./.skiff/broker`: the store, and main.ts's password file. */
export function defaultDataDir(): string {
  const base = process.env.SKIFF_DATA_DIR;
  return base ? join(base, "broker") : join(".skiff", "broker");
}
