// Info, tokens, users, organizations, spaces, roles and the audit log.

import { Elysia, t } from "elysia";
import { newGuid, type SpaceRecord } from "../db/store.ts";
import { accessOf, authenticate, bearer, hashToken, issueToken, ROLE_TYPES, SPACE_ROLES, visibleOrgs } from "./auth.ts";
import type { ControllerContext } from "./context.ts";
import { notFound, unprocessable, uniqueness } from "./errors.ts";
import { LoginGuard } from "./login.ts";
import { pageOf, paginated, parsePage, presentEvent, presentOrg, presentRole, presentSpace, presentUser } from "./present.ts";

const NAME = { minLength: 1, maxLength: 255 };
const pageQuery = { page: t.Optional(t.String()), per_page: t.Optional(t.String()) };

export function orgRoutes(ctx: ControllerContext) {
  const { store } = ctx;
  const auth = async (request: Request) => accessOf(store, await authenticate(store, request));
  const guard = new LoginGuard({ store, log: ctx.log.child("login"), limits: ctx.limits });

  return new Elysia({ name: "orgs" })
    .get("/v3/info", () => ({
      name: "skiff", build: ctx.version, version: 3, description: "skiff: a Cloud Foundry-shaped platform-as-a-service",
      default_domain: ctx.domain, links: { self: { href: "/v3/info" }, tokens: { href: "/v3/tokens" }, openapi: { href: "/v3/openapi.json" } },
    }), { detail: { summary: "About this controller (no authentication)" } })

    .post("/v3/tokens", async ({ body, set, request, server }) => {
      // the address of the socket: X-Forwarded-For and the like are the client's to make up
      const user = await guard.logIn(body.username, body.password, server?.requestIP(request)?.address);
      set.status = 201;
      return { ...(await issueToken(store, user)), user: presentUser(user) };
    }, { body: t.Object({ username: t.String(NAME), password: t.String({ minLength: 1, maxLength: 1024 }) }), detail: { summary: "Log in: exchange a username and password for a bearer token (rate-limited per client address, 429; failed logins in a row lock the name for a while: see the controller README)" } })

    .delete("/v3/tokens/current", async ({ request, set }) => {
      const token = bearer(request);
      if (token) await store.deleteToken(hashToken(token));
      set.status = 204;
      return "";
    }, { detail: { summary: "Log out: revoke this token" } })

    .get("/v3/users/me", async ({ request }) => presentUser((await auth(request)).user), { detail: { summary: "The logged-in user" } })

    .get("/v3/users", async ({ request, query }) => {
      (await auth(request)).requireAdmin();
      return pageOf("/v3/users", parsePage(query), (await store.listUsers()).map(presentUser));
    }, { query: t.Object(pageQuery), detail: { summary: "List users (admin)" } })

    .post("/v3/users", async ({ request, body, set }) => {
      const access = await auth(request);
      access.requireAdmin();
      if (await store.userByName(body.username)) throw uniqueness(`a user named ${body.username} already exists`);
      const user = { guid: newGuid(), username: body.username, password_hash: await Bun.password.hash(body.password), admin: body.admin ?? false, created_at: Date.now() };
      await store.tx(async (q) => {
        await store.insertUser(q, user);
        await store.recordEvent(q, { type: "audit.user.create", actor_guid: access.user.guid, actor_name: access.user.username, target_type: "user", target_guid: user.guid, target_name: user.username, space_guid: null, data: { admin: user.admin } });
      });
      set.status = 201;
      return presentUser(user);
    }, { body: t.Object({ username: t.String({ minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9._@+-]+$" }), password: t.String({ minLength: 8, maxLength: 1024 }), admin: t.Optional(t.Boolean()) }), detail: { summary: "Create a user (admin)" } })

    // UAA's PATCH /Users/{id}/status: an admin ends a login lockout before its time (only unlocking is possible)
    .patch("/v3/users/:guid/status", async ({ request, params, body }) => {
      const access = await auth(request);
      access.requireAdmin();
      if (body.locked !== false) throw unprocessable("a user's status can only be set to locked: false (an account locks itself after failed logins)");
      const user = await store.userByGuid(params.guid);
      if (!user) throw notFound("User");
      await store.tx(async (q) => {
        await store.clearLoginFailures(user.username, q);
        await store.recordEvent(q, { type: "audit.user.unlock", actor_guid: access.user.guid, actor_name: access.user.username, target_type: "user", target_guid: user.guid, target_name: user.username, space_guid: null, data: {} });
      });
      return { ...presentUser(user), locked: false };
    }, { body: t.Object({ locked: t.Boolean() }), detail: { summary: "Unlock a user locked out by failed logins (admin)" } })

    .get("/v3/organizations", async ({ request, query }) => {
      const access = await auth(request);
      let orgs = await store.listOrgs();
      const visible = await visibleOrgs(store, access);
      if (visible) orgs = orgs.filter((o) => visible.has(o.guid));
      if (query.names) {
        const names = query.names.split(",");
        orgs = orgs.filter((o) => names.includes(o.name));
      }
      return pageOf("/v3/organizations", parsePage(query), orgs.map(presentOrg));
    }, { query: t.Object({ ...pageQuery, names: t.Optional(t.String()) }), detail: { summary: "List organizations" } })

    .post("/v3/organizations", async ({ request, body, set }) => {
      const access = await auth(request);
      access.requireAdmin();
      if ((await store.listOrgs()).some((o) => o.name === body.name)) throw uniqueness(`an organization named ${body.name} already exists`);
      const org = { guid: newGuid(), name: body.name, created_at: Date.now() };
      await store.tx(async (q) => {
        await q.run(`INSERT INTO orgs (guid, name, created_at) VALUES (?, ?, ?)`, [org.guid, org.name, org.created_at]);
        await store.recordEvent(q, { type: "audit.organization.create", actor_guid: access.user.guid, actor_name: access.user.username, target_type: "organization", target_guid: org.guid, target_name: org.name, space_guid: null, data: {} });
      });
      set.status = 201;
      return presentOrg(org);
    }, { body: t.Object({ name: t.String(NAME) }), detail: { summary: "Create an organization (admin)" } })

    .get("/v3/organizations/:guid", async ({ request, params }) => {
      const access = await auth(request);
      const org = await store.orgByGuidOrName(params.guid);
      // another tenant's org is not found, as in the list: its name is not a way to probe for it
      if (!org || (await visibleOrgs(store, access))?.has(org.guid) === false) throw notFound("Organization");
      return presentOrg(org);
    }, { detail: { summary: "Get an organization (one you can see: a space you can read, or an org role)" } })

    .get("/v3/spaces", async ({ request, query }) => {
      const access = await auth(request);
      let spaces: SpaceRecord[] = await store.listSpaces(query.organization_guids);
      spaces = spaces.filter((s) => access.canRead(s.guid));
      if (query.names) {
        const names = query.names.split(",");
        spaces = spaces.filter((s) => names.includes(s.name));
      }
      return pageOf("/v3/spaces", parsePage(query), spaces.map(presentSpace));
    }, { query: t.Object({ ...pageQuery, names: t.Optional(t.String()), organization_guids: t.Optional(t.String()) }), detail: { summary: "List spaces" } })

    .post("/v3/spaces", async ({ request, body, set }) => {
      const access = await auth(request);
      const org = await store.orgByGuidOrName(body.organization_guid);
      const roles = await store.rolesOf(access.user.guid);
      // the permission first, so a 422 never tells a non-admin that some other org exists
      if (!access.user.admin && !(org && roles.some((r) => r.org_guid === org.guid && r.type === "organization_manager"))) access.requireAdmin();
      if (!org) throw unprocessable("organization not found (see `skiff orgs`)");
      if (await store.spaceByName(org.guid, body.name)) throw uniqueness(`a space named ${body.name} already exists in ${org.name}`);
      const space = { guid: newGuid(), name: body.name, org_guid: org.guid, created_at: Date.now() };
      await store.tx(async (q) => {
        await q.run(`INSERT INTO spaces (guid, name, org_guid, created_at) VALUES (?, ?, ?, ?)`, [space.guid, space.name, space.org_guid, space.created_at]);
        await store.recordEvent(q, { type: "audit.space.create", actor_guid: access.user.guid, actor_name: access.user.username, target_type: "space", target_guid: space.guid, target_name: space.name, space_guid: space.guid, data: { organization: org.name } });
      });
      set.status = 201;
      return presentSpace(space);
    }, { body: t.Object({ name: t.String(NAME), organization_guid: t.String({ minLength: 1, maxLength: 255 }) }), detail: { summary: "Create a space (admin or org manager)" } })

    .get("/v3/spaces/:guid", async ({ request, params }) => {
      const access = await auth(request);
      const space = await store.spaceByGuid(params.guid);
      if (!space || !access.canRead(space.guid)) throw notFound("Space");
      return presentSpace(space);
    }, { detail: { summary: "Get a space" } })

    .get("/v3/roles", async ({ request, query }) => {
      const access = await auth(request);
      const roles = access.user.admin ? await store.listRoles() : await store.rolesOf(access.user.guid);
      return pageOf("/v3/roles", parsePage(query), roles.map(presentRole));
    }, { query: t.Object(pageQuery), detail: { summary: "List roles" } })

    .post("/v3/roles", async ({ request, body, set }) => {
      const access = await auth(request);
      access.requireAdmin();
      const user = (await store.userByGuid(body.user)) ?? (await store.userByName(body.user));
      if (!user) throw unprocessable(`user ${body.user} not found`);
      const isSpaceRole = (SPACE_ROLES as readonly string[]).includes(body.type);
      if (isSpaceRole && !body.space_guid) throw unprocessable(`${body.type} needs space_guid`);
      if (!isSpaceRole && !body.organization_guid) throw unprocessable(`${body.type} needs organization_guid`);
      if (body.space_guid && !(await store.spaceByGuid(body.space_guid))) throw unprocessable("space not found");
      if (body.organization_guid && !(await store.orgByGuidOrName(body.organization_guid))) throw unprocessable("organization not found");
      const role = { guid: newGuid(), user_guid: user.guid, type: body.type, org_guid: isSpaceRole ? null : body.organization_guid!, space_guid: isSpaceRole ? body.space_guid! : null, created_at: Date.now() };
      await store.tx(async (q) => {
        await q.run(`INSERT INTO roles (guid, user_guid, type, org_guid, space_guid, created_at) VALUES (?, ?, ?, ?, ?, ?)`, [role.guid, role.user_guid, role.type, role.org_guid, role.space_guid, role.created_at]);
        await store.recordEvent(q, { type: "audit.role.create", actor_guid: access.user.guid, actor_name: access.user.username, target_type: "user", target_guid: user.guid, target_name: user.username, space_guid: role.space_guid, data: { type: role.type } });
      });
      set.status = 201;
      return presentRole(role);
    }, { body: t.Object({ type: t.Union(ROLE_TYPES.map((r) => t.Literal(r))), user: t.String({ minLength: 1, maxLength: 64 }), space_guid: t.Optional(t.String()), organization_guid: t.Optional(t.String()) }), detail: { summary: "Give a user a role (admin)" } })

    .get("/v3/events", async ({ request, query }) => {
      const access = await auth(request);
      const page = parsePage(query);
      const list = (v: string | undefined) => (v ? v.split(",").filter(Boolean) : undefined);
      const { total, events } = await store.listEvents({
        targetGuids: list(query.target_guids), types: list(query.types), spaceGuids: access.readable,
        limit: page.perPage, offset: (page.page - 1) * page.perPage,
      });
      return paginated("/v3/events", page, total, events.map(presentEvent));
    }, { query: t.Object({ ...pageQuery, target_guids: t.Optional(t.String()), types: t.Optional(t.String()) }), detail: { summary: "The audit log, newest first (events in spaces you can read; admins see all)" } });
}
