// The web console, served by the controller under /console/ (and at / for browsers): server-rendered
// pages, htmx for the buttons and the panels that refresh, uPlot charts and an SSE log tail. It holds
// no rule of its own about who may see or change what: the session cookie is turned into the bearer
// token of an in-process /v3 call, so the API's gate and authorization (auth.ts) decide, exactly as
// for the CLI. Every change needs the session's CSRF token; /v3 itself never reads the cookie.

import { Elysia } from "elysia";
import type { ControllerContext } from "../src/api/context.ts";
import { ConsoleAssets } from "./assets.ts";
import { ApiRefusal, ConsoleApi, type Handle } from "./console-api.ts";
import { html, type Html } from "./html.ts";
import { appBody, envPanel, instancesTable, summary } from "./pages/app.ts";
import { clusterBody } from "./pages/cluster.ts";
import { homeBody } from "./pages/home.ts";
import { loginPage, page, refusal, type PageFrame } from "./pages/layout.ts";
import { marketplaceBody, servicesBody } from "./pages/services.ts";
import { clearedSessionCookie, CSRF_FIELD, CSRF_HEADER, csrfMatches, csrfTokenOf, sessionCookie, sessionToken } from "./session.ts";

/** No inline script or style anywhere, no framing, nothing from another origin. */
export const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8", "content-security-policy": CONSOLE_CSP, "x-content-type-options": "nosniff",
  "x-frame-options": "DENY", "referrer-policy": "same-origin", "cache-control": "no-store",
};
const SAFE_METHODS = new Set(["GET", "HEAD"]);

interface Session {
  api: ConsoleApi;
  csrf: string;
  user: { guid: string; username: string; admin: boolean };
}

const htmlResponse = (body: Html, status = 200, headers: Record<string, string> = {}) => new Response(body.text, { status, headers: { ...PAGE_HEADERS, ...headers } });
const flash = (kind: "ok" | "error", message: string | Html, status = 200, headers: Record<string, string> = {}) =>
  htmlResponse(html`<div class="flash ${kind}" data-status="${status}">${message}</div>`, status, headers);
const originOf = (request: Request) => new URL(request.url).origin;
const pathOf = (request: Request) => {
  const u = new URL(request.url);
  return u.pathname + u.search;
};

export function consoleRoutes(ctx: ControllerContext, handle: Handle) {
  const assets = new ConsoleAssets();
  // build now, off the request path; a failure is logged and shown by the first page that needs it
  assets.ready().then(() => ctx.log.info("console assets built", { ms: Math.round(assets.buildMs) }), (err) => ctx.log.error("console assets failed to build", { error: err as Error }));

  /** Where a request without a (valid) session goes: the login page, or 401 telling htmx to go there. */
  function toLogin(request: Request, clear: boolean): Response {
    const headers: Record<string, string> = clear ? { "set-cookie": clearedSessionCookie(request) } : {};
    const login = `/console/login?next=${encodeURIComponent(pathOf(request))}`;
    if (request.method === "GET" && request.headers.get("hx-request") !== "true" && !pathOf(request).startsWith("/console/api/"))
      return new Response(null, { status: 303, headers: { ...headers, location: login } });
    return flash("error", "Your session has ended: log in again.", 401, { ...headers, "hx-redirect": "/console/login" });
  }

  /** The logged-in user's session, or the response that refuses the request. CSRF is checked before anything else runs. */
  async function session(request: Request): Promise<Session | Response> {
    const token = sessionToken(request);
    if (!token) return toLogin(request, false);
    if (!SAFE_METHODS.has(request.method)) {
      let given = request.headers.get(CSRF_HEADER);
      if (!given && (request.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded"))
        given = String((await request.clone().formData()).get(CSRF_FIELD) ?? "");
      if (!csrfMatches(token, given)) return flash("error", "Refused: this change did not carry the page's CSRF token. Reload the page and try again.", 403);
    }
    const api = new ConsoleApi(handle, originOf(request), token);
    try {
      const user = await api.get<Session["user"]>("/v3/users/me");
      return { api, csrf: csrfTokenOf(token), user };
    } catch (err) {
      if (err instanceof ApiRefusal && err.status === 401) return toLogin(request, true);
      throw err;
    }
  }

  /** Runs a handler with the session; an API refusal becomes a page (or flash) with the API's own words. */
  const withSession = (fn: (s: Session, request: Request, params: Record<string, string>) => Promise<Response>) =>
    async ({ request, params }: { request: Request; params: Record<string, string> }) => {
      const s = await session(request);
      if (s instanceof Response) return s;
      try {
        return await fn(s, request, params);
      } catch (err) {
        if (!(err instanceof ApiRefusal)) throw err;
        if (request.headers.get("hx-request") === "true") return flash("error", `${err.message}`, err.status);
        return htmlResponse(page(await frame(s, "Refused", "apps"), html`<section class="card">${refusal(err.status === 404 ? "Not found" : "Refused", err)}</section>`), err.status);
      }
    };

  const frame = async (s: Session, title: string, section: PageFrame["section"]): Promise<PageFrame> => ({ title, user: s.user, csrf: s.csrf, assets: await assets.urls(), section });

  /** The app's summary panel data: its space and org names and its newest droplet. */
  async function appContext(api: ConsoleApi, app: any) {
    const space = await api.get(`/v3/spaces/${app.relationships.space.data.guid}`);
    const [org, pushes] = await Promise.all([
      api.get(`/v3/organizations/${space.relationships.organization.data.guid}`),
      api.get(`/v3/events?target_guids=${app.guid}&types=audit.app.droplet.create&per_page=1`),
    ]);
    return { space: { name: space.name as string, org: org.name as string }, lastPush: pushes.resources[0]?.created_at as string | undefined };
  }

  /** What each button asks of the API. */
  async function act(api: ConsoleApi, guid: string, action: string, form: URLSearchParams): Promise<{ message: string; redirect?: string }> {
    const app = await api.get(`/v3/apps/${guid}`);
    switch (action) {
      case "start":
      case "stop":
      case "restart":
        await api.call("POST", `/v3/apps/${guid}/actions/${action}`);
        return { message: `${app.name}: ${action === "stop" ? "stopping" : action === "start" ? "starting" : "restarting (rolling)"}.` };
      case "scale": {
        const instances = Number(form.get("instances"));
        const memory = Number(form.get("memory_in_mb"));
        const body: Record<string, number> = {};
        if (form.has("instances") && instances !== app.instances) body.instances = instances;
        if (form.has("memory_in_mb") && memory !== app.memory_in_mb) body.memory_in_mb = memory;
        if (Object.keys(body).length === 0) return { message: `${app.name}: nothing to change.` };
        await api.call("PATCH", `/v3/apps/${guid}`, body);
        // as `skiff scale -m`: new limits take effect on a (rolling) restart
        if (body.memory_in_mb !== undefined && app.state === "STARTED") await api.call("POST", `/v3/apps/${guid}/actions/restart`);
        return { message: `${app.name}: scaled to ${body.instances ?? app.instances} instance(s) of ${body.memory_in_mb ?? app.memory_in_mb} MB${body.memory_in_mb !== undefined ? ", restarting to apply the memory" : ""}.` };
      }
      case "rollback":
        await api.call("POST", `/v3/apps/${guid}/actions/rollback`, form.get("droplet_guid") ? { droplet_guid: form.get("droplet_guid") } : {});
        return { message: `${app.name}: rolling back.` };
      case "delete":
        await api.call("DELETE", `/v3/apps/${guid}`);
        return { message: `${app.name} deleted.`, redirect: "/console/" };
      default:
        throw new ApiRefusal(404, "CF-NotFound", `no console action "${action}"`);
    }
  }

  const readForm = async (request: Request) =>
    (request.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded") ? new URLSearchParams(await request.text()) : new URLSearchParams();

  return new Elysia({ name: "console" })
    .get("/console/login", async ({ request }) => {
      const msg = new URL(request.url).searchParams.get("ended") ? "You have logged out." : undefined;
      return htmlResponse(loginPage(await assets.urls(), msg));
    })
    // without JavaScript there is no login: the form posts to /v3/tokens from the script
    .post("/console/login", async () => htmlResponse(loginPage(await assets.urls(), "The console needs JavaScript to log in."), 400))
    // the token from POST /v3/tokens becomes the session cookie; the bearer header is what a page on another site cannot send
    .post("/console/session", async ({ request }) => {
      const auth = request.headers.get("authorization");
      if (!auth) return Response.json({ errors: [{ code: 10002, title: "CF-NotAuthenticated", detail: "send the token from POST /v3/tokens as Authorization: bearer <token>" }] }, { status: 401 });
      const me = await handle(new Request(originOf(request) + "/v3/users/me", { headers: { authorization: auth } }));
      if (!me.ok) return me;
      const token = /^bearer\s+(\S+)$/i.exec(auth)?.[1] ?? "";
      return new Response(null, { status: 204, headers: { "set-cookie": sessionCookie(request, token), "cache-control": "no-store" } });
    })
    .post("/console/logout", withSession(async (s, request) => {
      await s.api.raw("DELETE", "/v3/tokens/current");
      return new Response(null, { status: 303, headers: { location: "/console/login?ended=1", "set-cookie": clearedSessionCookie(request) } });
    }))
    .get("/console/assets/:name", ({ request, params }) => assets.response(params.name, request))

    .get("/console/", withSession(async (s, request) => {
      const space = new URL(request.url).searchParams.get("space") ?? undefined;
      const [orgs, spaces, apps, pushes] = await Promise.all([
        s.api.get("/v3/organizations?per_page=5000"),
        s.api.get("/v3/spaces?per_page=5000"),
        s.api.get("/v3/apps?include=routes&per_page=5000"),
        s.api.get("/v3/events?types=audit.app.droplet.create&per_page=5000"),
      ]);
      const now = Date.now();
      const running = new Map<string, number>(apps.resources.map((a: any) => [a.guid, ctx.actual.liveOf(a.guid, now).filter((i) => i.state === "RUNNING").length]));
      const lastPush = new Map<string, string>();
      for (const e of pushes.resources) if (!lastPush.has(e.target.guid)) lastPush.set(e.target.guid, e.created_at);
      return htmlResponse(page(await frame(s, "Apps", "apps"), homeBody({ orgs: orgs.resources, spaces: spaces.resources, apps: apps.resources, running, lastPush, space })));
    }))

    .get("/console/apps/:guid", withSession(async (s, _request, params) => {
      const g = encodeURIComponent(params.guid!);
      const app = await s.api.get(`/v3/apps/${g}`);
      const [c, events, droplets, env, bindings, instances] = await Promise.all([
        appContext(s.api, app),
        s.api.get(`/v3/events?target_guids=${g}&per_page=15`),
        s.api.maybe(`/v3/apps/${g}/droplets`),
        s.api.maybe(`/v3/apps/${g}/env`),
        s.api.maybe(`/v3/service_credential_bindings?app_guids=${g}&per_page=5000`),
        s.api.maybe(`/v3/service_instances?space_guids=${app.relationships.space.data.guid}&per_page=5000`),
      ]);
      const named = new Map(instances instanceof ApiRefusal ? [] : instances.resources.map((i: any) => [i.guid, i]));
      const bound = bindings instanceof ApiRefusal ? bindings : bindings.resources.map((b: any) => {
        const i: any = named.get(b.relationships.service_instance.data.guid);
        return { name: i?.name ?? "?", offering: i?.service_offering?.name ?? "?", plan: i?.service_plan?.name ?? "?", state: `${b.last_operation.type} ${b.last_operation.state}` };
      });
      return htmlResponse(page(await frame(s, app.name, "apps"), appBody({
        app, ...c, events: events.resources, droplets: droplets instanceof ApiRefusal ? droplets : droplets.resources, env, bindings: bound,
      })));
    }))
    .get("/console/apps/:guid/summary", withSession(async (s, _r, params) => {
      const app = await s.api.get(`/v3/apps/${encodeURIComponent(params.guid!)}`);
      return htmlResponse(html`<section class="card" id="summary" hx-get="/console/apps/${app.guid}/summary" hx-trigger="app-changed from:body" hx-swap="outerHTML">${summary(app, await appContext(s.api, app))}</section>`);
    }))
    .get("/console/apps/:guid/instances", withSession(async (s, _r, params) => htmlResponse(instancesTable(await s.api.get(`/v3/apps/${encodeURIComponent(params.guid!)}/instances`)))))
    .get("/console/apps/:guid/env", withSession(async (s, request, params) => {
      const reveal = new URL(request.url).searchParams.get("reveal") === "1";
      return htmlResponse(envPanel(params.guid!, await s.api.maybe(`/v3/apps/${encodeURIComponent(params.guid!)}/env`), reveal));
    }))
    .post("/console/apps/:guid/:action", withSession(async (s, request, params) => {
      const done = await act(s.api, encodeURIComponent(params.guid!), params.action!, await readForm(request));
      return flash("ok", done.message, 200, done.redirect ? { "hx-redirect": done.redirect } : { "hx-trigger": "app-changed" });
    }))

    .get("/console/services", withSession(async (s) => {
      const [instances, spaces, bindings, apps] = await Promise.all([
        s.api.get("/v3/service_instances?per_page=5000"), s.api.get("/v3/spaces?per_page=5000"),
        s.api.get("/v3/service_credential_bindings?per_page=5000"), s.api.get("/v3/apps?per_page=5000"),
      ]);
      const appName = new Map<string, string>(apps.resources.map((a: any) => [a.guid, a.name]));
      const bound = new Map<string, string[]>();
      for (const b of bindings.resources) {
        const i = b.relationships.service_instance.data.guid;
        bound.set(i, [...(bound.get(i) ?? []), appName.get(b.relationships.app.data.guid) ?? "?"]);
      }
      return htmlResponse(page(await frame(s, "Services", "services"), servicesBody(instances.resources, new Map(spaces.resources.map((x: any) => [x.guid, x.name])), bound)));
    }))
    .get("/console/marketplace", withSession(async (s) => {
      const [offerings, plans] = await Promise.all([s.api.get("/v3/service_offerings?per_page=5000"), s.api.get("/v3/service_plans?per_page=5000")]);
      return htmlResponse(page(await frame(s, "Marketplace", "marketplace"), marketplaceBody(offerings.resources, plans.resources)));
    }))
    .get("/console/cluster", withSession(async (s) => htmlResponse(page(await frame(s, "Cluster", "cluster"), clusterBody(await s.api.get("/v3/cluster"))))))

    // the page scripts' way to the API (charts, the log stream): the same /v3 call, as the session's user
    .all("/console/api/*", withSession(async (s, request) => {
      const path = pathOf(request).slice("/console/api".length);
      if (!path.startsWith("/v3/")) return flash("error", "only /v3 is reachable through the console", 404);
      const body = SAFE_METHODS.has(request.method) ? null : await request.arrayBuffer();
      const res = await s.api.raw(request.method, path, { body, contentType: request.headers.get("content-type"), signal: request.signal });
      const headers = new Headers(res.headers);
      headers.set("cache-control", "no-store");
      headers.set("x-content-type-options", "nosniff");
      return new Response(res.body, { status: res.status, headers });
    }));
}
