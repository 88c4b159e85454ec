// First start: the bootstrap admin (password from SKIFF_BOOTSTRAP_ADMIN_PASSWORD or generated and
// printed once), a default org and space, the default shared domain and the URL-signing secret.

import { randomBytes } from "node:crypto";
import { newGuid, type Store } from "./db/store.ts";

export interface BootstrapResult {
  adminCreated: boolean;
  /** set only when the password was generated: print it once */
  generatedPassword?: string;
  signingSecret: string;
  defaultSpaceGuid: string;
}

export const ADMIN_USER = "admin";
export const DEFAULT_ORG = "skiff";
export const DEFAULT_SPACE = "dev";

export async function bootstrap(store: Store, opts: { adminPassword?: string; domain: string }): Promise<BootstrapResult> {
  const signingSecret = await store.settingOrInit("url_signing_secret", () => randomBytes(32).toString("hex"));
  let generatedPassword: string | undefined;
  let adminCreated = false;
  const now = Date.now();
  const password = opts.adminPassword || randomBytes(12).toString("base64url");
  const hash = (await store.countUsers()) === 0 ? await Bun.password.hash(password) : undefined;
  const spaceGuid = await store.tx(async (q) => {
    if (hash && Number((await q.get<{ n: number }>(`SELECT COUNT(*) AS n FROM users`))!.n) === 0) {
      await store.insertUser(q, { guid: newGuid(), username: ADMIN_USER, password_hash: hash, admin: true, created_at: now });
      adminCreated = true;
      if (!opts.adminPassword) generatedPassword = password;
    }
    let org = await q.get<{ guid: string }>(`SELECT guid FROM orgs WHERE name = ?`, [DEFAULT_ORG]);
    if (!org && Number((await q.get<{ n: number }>(`SELECT COUNT(*) AS n FROM orgs`))!.n) === 0) {
      org = { guid: newGuid() };
      await q.run(`INSERT INTO orgs (guid, name, created_at) VALUES (?, ?, ?)`, [org.guid, DEFAULT_ORG, now]);
      await q.run(`INSERT INTO spaces (guid, name, org_guid, created_at) VALUES (?, ?, ?, ?)`, [newGuid(), DEFAULT_SPACE, org.guid, now]);
    }
    const domain = opts.domain.toLowerCase();
    if (!(await q.get(`SELECT guid FROM domains WHERE name = ?`, [domain])))
      await q.run(`INSERT INTO domains (guid, name, shared, org_guid, created_at) VALUES (?, ?, 1, NULL, ?)`, [newGuid(), domain, now]);
    await q.run(`DELETE FROM settings WHERE name = 'default_domain'`);
    await q.run(`INSERT INTO settings (name, value) VALUES ('default_domain', ?)`, [domain]);
    const space = await q.get<{ guid: string }>(`SELECT guid FROM spaces ORDER BY created_at LIMIT 1`);
    return space?.guid ?? "";
  });
  return { adminCreated, generatedPassword, signingSecret, defaultSpaceGuid: spaceGuid };
}
