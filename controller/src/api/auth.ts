// Bearer tokens (random, stored as sha256) and who may see or change what: admins everything;
// other users the spaces where they hold a role (org_manager covers the org's spaces).

import { createHash, randomBytes } from "node:crypto";
import type { DomainRecord, SpaceRecord, Store, UserRecord } from "../db/store.ts";
import { notAuthenticated, notAuthorized, unprocessable } from "./errors.ts";

export const TOKEN_TTL_MS = 24 * 3600_000;
export const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

export const SPACE_ROLES = ["space_developer", "space_manager", "space_auditor"] as const;
export const ORG_ROLES = ["organization_user", "organization_manager", "organization_auditor"] as const;
export const ROLE_TYPES = [...SPACE_ROLES, ...ORG_ROLES] as const;

export async function issueToken(store: Store, user: UserRecord, ttlMs = TOKEN_TTL_MS): Promise<{ access_token: string; token_type: "bearer"; expires_in: number }> {
  const token = randomBytes(32).toString("base64url");
  await store.insertToken(hashToken(token), user.guid, Date.now() + ttlMs);
  return { access_token: token, token_type: "bearer", expires_in: Math.floor(ttlMs / 1000) };
}

export function bearer(request: Request): string | undefined {
  const h = request.headers.get("authorization");
  const m = h ? /^bearer\s+(\S+)$/i.exec(h) : null;
  return m?.[1];
}

/** Who sent each request, once looked up: the API's gate and then its handler ask. */
const seen = new WeakMap<Request, UserRecord>();

export async function authenticate(store: Store, request: Request): Promise<UserRecord> {
  const known = seen.get(request);
  if (known) return known;
  const token = bearer(request);
  if (!token) throw notAuthenticated();
  const user = await store.tokenUser(hashToken(token), Date.now());
  if (!user) throw notAuthenticated("Your token is invalid or has expired: run `skiff login` again.");
  seen.set(request, user);
  return user;
}

export interface Access {
  user: UserRecord;
  /** undefined: every space (admin) */
  readable: string[] | undefined;
  canRead(spaceGuid: string): boolean;
  canWrite(spaceGuid: string): boolean;
  requireWrite(spaceGuid: string): void;
  requireAdmin(): void;
}

export async function accessOf(store: Store, user: UserRecord): Promise<Access> {
  if (user.admin) {
    return { user, readable: undefined, canRead: () => true, canWrite: () => true, requireWrite: () => {}, requireAdmin: () => {} };
  }
  const roles = await store.rolesOf(user.guid);
  const read = new Set<string>();
  const write = new Set<string>();
  for (const r of roles) {
    if (r.space_guid) {
      read.add(r.space_guid);
      if (r.type === "space_developer") write.add(r.space_guid);
    } else if (r.org_guid && r.type === "organization_manager") {
      for (const s of await store.listSpaces(r.org_guid)) read.add(s.guid);
    }
  }
  const a: Access = {
    user,
    readable: [...read],
    canRead: (s) => read.has(s),
    canWrite: (s) => write.has(s),
    requireWrite: (s) => {
      if (!write.has(s)) throw notAuthorized("You need the space_developer role in this space to change it.");
    },
    requireAdmin: () => {
      throw notAuthorized("Only an admin can do this.");
    },
  };
  return a;
}

/** Orgs a user may see: those holding a space they can read, or where they hold an org role. undefined: all (admin). */
export async function visibleOrgs(store: Store, access: Access): Promise<Set<string> | undefined> {
  if (!access.readable) return undefined;
  const orgs = new Set((await store.listSpaces()).filter((s) => access.canRead(s.guid)).map((s) => s.org_guid));
  for (const r of await store.rolesOf(access.user.guid)) if (r.org_guid) orgs.add(r.org_guid);
  return orgs;
}

/** Shared domains, and the private domains of orgs the user can see: another org's is not found. */
export async function visibleDomains(store: Store, access: Access): Promise<DomainRecord[]> {
  const orgs = await visibleOrgs(store, access);
  return (await store.listDomains()).filter((d) => d.shared || !orgs || (d.org_guid !== null && orgs.has(d.org_guid)));
}

export const SPACE_NOT_FOUND = "space not found: it does not exist or you have no access to it (see `skiff spaces`)";

/**
 * The space a request wants to create something in. One the user cannot read answers exactly as one
 * that does not exist (issue 24: a 403 told that it exists); 403 is kept for a space the user can
 * read but not change (an auditor, a space or org manager).
 */
export async function spaceToChange(store: Store, access: Access, guid: string | undefined): Promise<SpaceRecord> {
  const space = guid ? await store.spaceByGuid(guid) : undefined;
  if (!space || !access.canRead(space.guid)) throw unprocessable(SPACE_NOT_FOUND);
  access.requireWrite(space.guid);
  return space;
}
