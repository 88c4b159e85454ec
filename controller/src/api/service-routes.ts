// Services in the v3 API: service brokers (admin), the marketplace (offerings and plans), managed service
// instances and app credential bindings. Broker calls run in the background: creates and deletes answer
// 202 and the resource's `last_operation` shows progress. Credentials appear only in
// GET /v3/service_credential_bindings/:guid/details, to the space's developers.

import { Elysia, t } from "elysia";
import { accessOf, authenticate, spaceToChange, type Access } from "./auth.ts";
import { loadApp } from "./apps-routes.ts";
import type { ControllerContext } from "./context.ts";
import { notFound, unprocessable } from "./errors.ts";
import { pageOf, parsePage } from "./present.ts";
import type { Actor } from "../db/store.ts";
import type { BindingRecord, BrokerRecord, InstanceRecord, LastOperation, OfferingRecord, PlanRecord } from "../services/service-store.ts";

const iso = (ms: number) => new Date(Number(ms)).toISOString();
const pageQuery = { page: t.Optional(t.String()), per_page: t.Optional(t.String()) };
const list = (v: string | undefined) => (v ? v.split(",").filter(Boolean) : undefined);
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const relationship = t.Object({ data: t.Object({ guid: t.String({ minLength: 1, maxLength: 64 }) }) });
const parameters = t.Optional(t.Record(t.String(), t.Unknown()));

const presentOp = (o: LastOperation) => ({ type: o.type, state: o.state, description: o.description, updated_at: iso(o.updated_at) });
const presentBroker = (b: BrokerRecord) => ({
  guid: b.guid, name: b.name, url: b.url, created_at: iso(b.created_at), updated_at: iso(b.updated_at),
  links: { self: { href: `/v3/service_brokers/${b.guid}` }, service_offerings: { href: `/v3/service_offerings?service_broker_guids=${b.guid}` } },
});
const presentOffering = (o: OfferingRecord, broker: string) => ({
  guid: o.guid, name: o.name, description: o.description, available: true, tags: o.tags, shareable: false,
  broker_catalog: { id: o.broker_service_id, features: { bindable: o.bindable } }, created_at: iso(o.created_at),
  relationships: { service_broker: { data: { guid: o.broker_guid, name: broker } } },
});
const presentPlan = (p: PlanRecord, offering: string) => ({
  guid: p.guid, name: p.name, description: p.description, free: p.free, available: true,
  broker_catalog: { id: p.broker_plan_id }, created_at: iso(p.created_at),
  relationships: { service_offering: { data: { guid: p.offering_guid, name: offering } } },
});
const presentBinding = (b: BindingRecord) => ({
  guid: b.guid, type: "app", name: null, last_operation: presentOp(b.last_operation), created_at: iso(b.created_at), updated_at: iso(b.updated_at),
  relationships: { app: { data: { guid: b.app_guid } }, service_instance: { data: { guid: b.instance_guid } } },
  links: { self: { href: `/v3/service_credential_bindings/${b.guid}` }, details: { href: `/v3/service_credential_bindings/${b.guid}/details` } },
});

const actorOf = (a: Access): Actor => ({ guid: a.user.guid, name: a.user.username });

export function serviceRoutes(ctx: ControllerContext) {
  const { store } = ctx;
  const gw = ctx.services;
  const s = () => gw.records;
  const auth = async (request: Request) => accessOf(store, await authenticate(store, request));

  async function presentInstance(i: InstanceRecord) {
    const plan = await s().plan(i.plan_guid);
    const offering = plan && (await s().offering(plan.offering_guid));
    return {
      guid: i.guid, name: i.name, type: "managed", dashboard_url: i.dashboard_url, last_operation: presentOp(i.last_operation),
      created_at: iso(i.created_at), updated_at: iso(i.updated_at),
      // skiff adds the names, so listings need no second request
      service_offering: { guid: offering?.guid ?? null, name: offering?.name ?? null },
      service_plan: { guid: plan?.guid ?? null, name: plan?.name ?? null },
      relationships: { space: { data: { guid: i.space_guid } }, service_plan: { data: { guid: i.plan_guid } } },
      links: { self: { href: `/v3/service_instances/${i.guid}` }, service_credential_bindings: { href: `/v3/service_credential_bindings?service_instance_guids=${i.guid}` } },
    };
  }

  async function loadInstance(access: Access, guid: string, write = false) {
    const c = await s().instanceContext(guid);
    if (!c || !access.canRead(c.instance.space_guid)) throw notFound("Service instance");
    if (write) access.requireWrite(c.instance.space_guid);
    return c;
  }
  async function loadBinding(access: Access, guid: string, write = false) {
    const b = await s().binding(guid);
    const i = b && (await s().instance(b.instance_guid));
    if (!b || !i || !access.canRead(i.space_guid)) throw notFound("Service credential binding");
    if (write) access.requireWrite(i.space_guid);
    return b;
  }
  async function loadBroker(access: Access, guid: string) {
    access.requireAdmin();
    const b = await s().broker(guid);
    if (!b) throw notFound("Service broker");
    return b;
  }
  const checkUrl = (url: string) => {
    let u: URL | undefined;
    try {
      u = new URL(url);
    } catch {}
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) throw unprocessable(`broker url "${url}" must be an http(s) URL`);
    // the URL is shown in listings and events: credentials belong in USER and PASSWORD
    if (u.username || u.password) throw unprocessable("put the broker's credentials in USER and PASSWORD, not in its URL");
  };

  return new Elysia({ name: "services" })
    // ---- brokers (admin) ----
    .get("/v3/service_brokers", async ({ request, query }) => {
      (await auth(request)).requireAdmin();
      let brokers = await s().brokers();
      const names = list(query.names);
      if (names) brokers = brokers.filter((b) => names.includes(b.name));
      return pageOf("/v3/service_brokers", parsePage(query), brokers.map(presentBroker));
    }, { query: t.Object({ ...pageQuery, names: t.Optional(t.String()) }), detail: { summary: "List service brokers (admin)" } })

    .post("/v3/service_brokers", async ({ request, body, set }) => {
      const access = await auth(request);
      access.requireAdmin();
      checkUrl(body.url);
      const b = await gw.registerBroker(actorOf(access), { name: body.name, url: body.url, ...body.authentication.credentials });
      set.status = 201;
      return presentBroker(b);
    }, {
      body: t.Object({
        name: t.String({ minLength: 1, maxLength: 255 }),
        url: t.String({ minLength: 1, maxLength: 2048 }),
        authentication: t.Object({ type: t.Literal("basic"), credentials: t.Object({ username: t.String({ minLength: 1, maxLength: 255 }), password: t.String({ minLength: 1, maxLength: 1024 }) }) }),
      }),
      detail: { summary: "Register a service broker: fetches its catalog into offerings and plans (admin)" },
    })

    .get("/v3/service_brokers/:guid", async ({ request, params }) => presentBroker(await loadBroker(await auth(request), params.guid)), { detail: { summary: "Get a service broker (admin)" } })

    .patch("/v3/service_brokers/:guid", async ({ request, params, body }) => {
      const access = await auth(request);
      const b = await loadBroker(access, params.guid);
      if (body.url) checkUrl(body.url);
      return presentBroker(await gw.updateBroker(actorOf(access), b, { url: body.url, ...body.authentication?.credentials }));
    }, {
      body: t.Object({
        url: t.Optional(t.String({ minLength: 1, maxLength: 2048 })),
        authentication: t.Optional(t.Object({ type: t.Literal("basic"), credentials: t.Object({ username: t.String({ minLength: 1, maxLength: 255 }), password: t.String({ minLength: 1, maxLength: 1024 }) }) })),
      }),
      detail: { summary: "Change a broker's URL or credentials and re-read its catalog (admin)" },
    })

    .delete("/v3/service_brokers/:guid", async ({ request, params, set }) => {
      const access = await auth(request);
      await gw.deleteBroker(actorOf(access), await loadBroker(access, params.guid));
      set.status = 204;
      return "";
    }, { detail: { summary: "Remove a service broker without instances, with its offerings and plans (admin)" } })

    // ---- marketplace ----
    .get("/v3/service_offerings", async ({ request, query }) => {
      await auth(request);
      const brokers = new Map((await s().brokers()).map((b) => [b.guid, b.name]));
      let offerings = await s().offerings();
      const names = list(query.names), brokerGuids = list(query.service_broker_guids), brokerNames = list(query.service_broker_names);
      if (names) offerings = offerings.filter((o) => names.includes(o.name));
      if (brokerGuids) offerings = offerings.filter((o) => brokerGuids.includes(o.broker_guid));
      if (brokerNames) offerings = offerings.filter((o) => brokerNames.includes(brokers.get(o.broker_guid) ?? ""));
      return pageOf("/v3/service_offerings", parsePage(query), offerings.map((o) => presentOffering(o, brokers.get(o.broker_guid) ?? "")));
    }, { query: t.Object({ ...pageQuery, names: t.Optional(t.String()), service_broker_guids: t.Optional(t.String()), service_broker_names: t.Optional(t.String()) }), detail: { summary: "The marketplace: service offerings" } })

    .get("/v3/service_offerings/:guid", async ({ request, params }) => {
      await auth(request);
      const o = await s().offering(params.guid);
      if (!o) throw notFound("Service offering");
      return presentOffering(o, (await s().broker(o.broker_guid))?.name ?? "");
    }, { detail: { summary: "Get a service offering" } })

    .get("/v3/service_plans", async ({ request, query }) => {
      await auth(request);
      const offerings = await s().offerings();
      const byGuid = new Map(offerings.map((o) => [o.guid, o.name]));
      let guids = list(query.service_offering_guids);
      const offeringNames = list(query.service_offering_names);
      if (offeringNames) guids = offerings.filter((o) => offeringNames.includes(o.name) && (!guids || guids.includes(o.guid))).map((o) => o.guid);
      let plans = await s().plans(guids);
      const names = list(query.names);
      if (names) plans = plans.filter((p) => names.includes(p.name));
      return pageOf("/v3/service_plans", parsePage(query), plans.map((p) => presentPlan(p, byGuid.get(p.offering_guid) ?? "")));
    }, { query: t.Object({ ...pageQuery, names: t.Optional(t.String()), service_offering_guids: t.Optional(t.String()), service_offering_names: t.Optional(t.String()) }), detail: { summary: "The marketplace: service plans" } })

    .get("/v3/service_plans/:guid", async ({ request, params }) => {
      await auth(request);
      const p = await s().plan(params.guid);
      if (!p) throw notFound("Service plan");
      return presentPlan(p, (await s().offering(p.offering_guid))?.name ?? "");
    }, { detail: { summary: "Get a service plan" } })

    // ---- service instances ----
    .get("/v3/service_instances", async ({ request, query }) => {
      const access = await auth(request);
      let spaces = access.readable;
      const filter = list(query.space_guids);
      if (filter) spaces = spaces ? filter.filter((x) => spaces!.includes(x)) : filter;
      let instances = await s().instances(spaces);
      const names = list(query.names);
      if (names) instances = instances.filter((i) => names.includes(i.name));
      return pageOf("/v3/service_instances", parsePage(query), await Promise.all(instances.map(presentInstance)));
    }, { query: t.Object({ ...pageQuery, names: t.Optional(t.String()), space_guids: t.Optional(t.String()) }), detail: { summary: "List service instances" } })

    .post("/v3/service_instances", async ({ request, body, set }) => {
      const access = await auth(request);
      if (body.type !== "managed") throw unprocessable("only managed service instances (type: managed) are supported");
      if (!NAME.test(body.name)) throw unprocessable(`service instance name "${body.name}" must start with a letter or digit and hold only letters, digits, '.', '_' and '-' (at most 63)`);
      const space = await spaceToChange(store, access, body.relationships.space.data.guid);
      const plan = await s().plan(body.relationships.service_plan.data.guid);
      if (!plan) throw unprocessable("service plan not found (see `skiff marketplace`)");
      const instance = await gw.createInstance(actorOf(access), space, plan, body.name, body.parameters ?? {});
      set.status = 202;
      set.headers.location = `/v3/service_instances/${instance.guid}`;
      return presentInstance(instance);
    }, {
      body: t.Object({
        type: t.String({ maxLength: 32 }),
        name: t.String({ minLength: 1, maxLength: 63 }),
        relationships: t.Object({ space: relationship, service_plan: relationship }),
        parameters,
      }),
      detail: { summary: "Create a managed service instance: the broker provisions it; poll last_operation (202)" },
    })

    .get("/v3/service_instances/:guid", async ({ request, params }) => presentInstance((await loadInstance(await auth(request), params.guid)).instance), { detail: { summary: "Get a service instance and its last operation" } })

    .patch("/v3/service_instances/:guid", async ({ request, params, body, set }) => {
      const access = await auth(request);
      const c = await loadInstance(access, params.guid, true);
      const planGuid = body.relationships?.service_plan?.data.guid;
      const plan = planGuid === undefined ? undefined : await s().plan(planGuid);
      if (planGuid !== undefined && !plan) throw unprocessable(`service plan not found (see \`skiff marketplace -e ${c.offering.name}\`)`);
      const updated = await gw.updateInstance(actorOf(access), c, { plan, params: body.parameters });
      // CF answers 202 when the broker works on it, 200 when nothing was asked of it
      set.status = updated.last_operation.type === "update" && updated.last_operation.state === "in progress" ? 202 : 200;
      if (set.status === 202) set.headers.location = `/v3/service_instances/${updated.guid}`;
      return presentInstance(updated);
    }, {
      body: t.Object({ relationships: t.Optional(t.Object({ service_plan: t.Optional(relationship) })), parameters }),
      detail: { summary: "Change a managed instance's plan (within its offering, when the broker's catalog allows) or parameters: the broker applies it; poll last_operation (202)" },
    })

    .delete("/v3/service_instances/:guid", async ({ request, params, set }) => {
      const access = await auth(request);
      const c = await loadInstance(access, params.guid, true);
      await gw.deleteInstance(actorOf(access), c);
      set.status = 202;
      return presentInstance((await s().instance(c.instance.guid)) ?? c.instance);
    }, { detail: { summary: "Delete a service instance (refused while bound): the broker deprovisions it; 404 once gone" } })

    // ---- credential bindings ----
    .get("/v3/service_credential_bindings", async ({ request, query }) => {
      const access = await auth(request);
      let bindings = await s().bindings({ spaceGuids: access.readable });
      const apps = list(query.app_guids), instances = list(query.service_instance_guids);
      if (apps) bindings = bindings.filter((b) => apps.includes(b.app_guid));
      if (instances) bindings = bindings.filter((b) => instances.includes(b.instance_guid));
      return pageOf("/v3/service_credential_bindings", parsePage(query), bindings.map(presentBinding));
    }, { query: t.Object({ ...pageQuery, app_guids: t.Optional(t.String()), service_instance_guids: t.Optional(t.String()) }), detail: { summary: "List credential bindings (never their credentials)" } })

    .post("/v3/service_credential_bindings", async ({ request, body, set }) => {
      const access = await auth(request);
      if (body.type !== "app") throw unprocessable("only app bindings (type: app) are supported");
      if (!body.relationships.app) throw unprocessable("an app binding needs relationships.app");
      const app = await loadApp(ctx, access, body.relationships.app.data.guid, true);
      const c = await loadInstance(access, body.relationships.service_instance.data.guid, true);
      const binding = await gw.createBinding(actorOf(access), app, c, body.parameters ?? {});
      set.status = 202;
      set.headers.location = `/v3/service_credential_bindings/${binding.guid}`;
      return presentBinding(binding);
    }, {
      body: t.Object({
        type: t.String({ maxLength: 16 }),
        name: t.Optional(t.Union([t.String({ maxLength: 255 }), t.Null()])),
        relationships: t.Object({ app: t.Optional(relationship), service_instance: relationship }),
        parameters,
      }),
      detail: { summary: "Bind an app to a service instance: the broker makes credentials; restart the app to use them (202)" },
    })

    .get("/v3/service_credential_bindings/:guid", async ({ request, params }) => presentBinding(await loadBinding(await auth(request), params.guid)), { detail: { summary: "Get a credential binding and its last operation" } })

    .get("/v3/service_credential_bindings/:guid/details", async ({ request, params }) => {
      const b = await loadBinding(await auth(request), params.guid, true);
      const credentials = await gw.credentialsOf(b);
      if (!credentials) throw unprocessable(`the binding has no credentials (last operation: ${b.last_operation.type} ${b.last_operation.state})`);
      return { credentials };
    }, { detail: { summary: "A binding's credentials (space developers only)" } })

    .delete("/v3/service_credential_bindings/:guid", async ({ request, params, set }) => {
      const access = await auth(request);
      const b = await loadBinding(access, params.guid, true);
      await gw.deleteBinding(actorOf(access), b);
      set.status = 202;
      return presentBinding((await s().binding(b.guid)) ?? b);
    }, { detail: { summary: "Unbind: the broker removes the credentials; 404 once gone; restart the app to drop them from its env" } });
}
