// Redis as a service on a shared redis-server, isolated by ACL (Redis 7): each binding is an ACL user
// allowed only keys and channels under its instance's prefix `<instance>:`, in database 0, with the
// commands that see or act on the whole server removed (tenantCommandRules). Unbind deletes the user, which
// also disconnects its clients. Why ACLs rather than a server per instance: README.md.
// A plan caps an instance's clients. Redis has no per-user limit to set, so the provisioner enforces it:
// every second it lists the clients (CLIENT LIST) and disconnects an instance's newest ones past the cap.

import { RedisClient } from "bun";
import { aclUsersWithoutPassword } from "../servers/credential-check.ts";
import type { BindRequest, BindingRef, CatalogPlan, CatalogService, InstanceRef, Provisioner, ProvisionRequest, UpdateRequest } from "../types.ts";
import { advertised, credentials, newPassword, resourceName } from "./names.ts";
import { limitedPlan, planLimit } from "./plan-limits.ts";

export interface RedisProvisionerOptions {
  /** The admin (e.g. the default user): redis://default:pw@host:port */
  adminUrl: string;
  advertise?: { host?: string; port?: number };
  service?: Partial<CatalogService>;
  /** How often the plans' client caps are enforced (default 1000 ms): the longest a client past the cap lives. */
  clientCapIntervalMs?: number;
}

/**
 * Enforced by the provisioner, not by Redis (ACLs have no numeric limits): a sweep disconnects an
 * instance's newest clients past the cap. Memory is the server's, shared: `maxmemory` is server-wide, so
 * no plan can promise one tenant a share of it.
 */
const clients = (value: number) => ({ clients_per_instance: { value, reads: "client connections per instance", how: "the broker disconnects the newest past the cap within a second" } });

export const redisService: CatalogService = {
  id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f31",
  name: "redis",
  description: "A key prefix on a shared Redis server, isolated by ACL users",
  bindable: true,
  tags: ["redis", "key-value"],
  plan_updateable: true,
  instances_retrievable: true,
  bindings_retrievable: true,
  metadata: { displayName: "Redis" },
  plans: [
    limitedPlan({ id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f32", name: "shared", summary: "Keys under <instance>: on a shared Redis 7 server (memory shared)", limits: clients(20) }),
    limitedPlan({ id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f33", name: "shared-large", summary: "Keys under <instance>: on a shared Redis 7 server (memory shared)", limits: clients(100) }),
  ],
};

/**
 * What a tenant may run: everything on its own keys and channels, nothing that reads or changes the whole
 * server. Categories first (@admin, @dangerous hold FLUSHALL, KEYS, CONFIG, CLIENT LIST/KILL, INFO,
 * MONITOR, DEBUG, SORT …), then the commands they miss that would let one tenant see or touch another
 * (issue 8 audit, each checked in tests/services/redis.test.ts):
 * - SELECT, MOVE, COPY (its DB option), SWAPDB: a tenant stays in database 0, where deprovision looks;
 * - FUNCTION (all of it): libraries are server-wide, so LIST shows every tenant's and FLUSH/DELETE wipe them;
 * - PUBSUB: CHANNELS/NUMSUB/NUMPAT/SHARD* list every tenant's channel names (ACLs do not filter replies);
 * - DBSIZE, MEMORY (but USAGE of its own key): server-wide counts;
 * - SCRIPT FLUSH/KILL/DEBUG: empty the shared script cache, kill or block another tenant's script;
 * - CLIENT TRACKING: BCAST PREFIX streams invalidations of any key name, whatever the key patterns say.
 */
export const tenantCommandRules = [
  "+@all",
  "-@admin",
  "-@dangerous",
  "-keys",
  "-scan",
  "-randomkey",
  "-swapdb",
  "-flushall",
  "-flushdb",
  "-select",
  "-move",
  "-copy",
  "-function",
  "-pubsub",
  "-dbsize",
  "-memory",
  "+memory|usage",
  "-script|flush",
  "-script|kill",
  "-script|debug",
  "-client|tracking",
] as const;

/** Our users' names (userName below): what deprovision and the rule upgrade may touch, nothing else. */
const tenantUser = /^skiffr[0-9a-f]{24}-b[0-9a-f]{24}$/;

/**
 * Throws on ACL rules that would let a user in without a password (issue 24): `nopass`, or `>` with an
 * empty password. Every ACL SETUSER of the provisioner goes through it.
 */
export function refusePasswordlessRules(rules: readonly string[]): void {
  const bad = rules.find((r) => r.toLowerCase() === "nopass" || r === ">");
  if (bad !== undefined) throw new Error(`refusing ACL rule '${bad}': a Redis user must never log in without a password`);
}

export class RedisProvisioner implements Provisioner {
  readonly service: CatalogService;
  private readonly admin: RedisClient;
  private upgraded: Promise<void> | undefined;
  /** Each instance's client cap, by the instance part of its users' names (`skiffr<hash>`). */
  private readonly caps = new Map<string, number>();
  private capTimer: ReturnType<typeof setInterval> | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(private readonly opts: RedisProvisionerOptions) {
    this.service = { ...redisService, ...opts.service };
    this.admin = new RedisClient(opts.adminUrl, { autoReconnect: true, connectionTimeout: 5000 });
  }

  /** `<instance>:` when the id is a plain GUID-like string, else a hash (ACL patterns treat *?[] as globs). */
  static keyPrefix(instanceId: string): string {
    return /^[A-Za-z0-9._-]{1,64}$/.test(instanceId) ? `${instanceId}:` : `${resourceName("skiff", instanceId)}:`;
  }

  static userName(instanceId: string, bindingId: string): string {
    return `${resourceName("skiffr", instanceId)}-${resourceName("b", bindingId)}`;
  }

  async provision(req: ProvisionRequest) {
    // Nothing to create: the instance is a key prefix. Reaching the server now fails fast when it is down.
    await this.upgradeUsers();
    this.setCap(req.instanceId, req.plan);
  }

  /** A plan change: the new cap holds from this sweep on (the clients past it are disconnected before this returns). */
  async update(req: UpdateRequest) {
    await this.upgradeUsers();
    this.setCap(req.instanceId, req.plan);
    // a sweep already running may have read the old cap: wait for it, then sweep with the new one
    await this.sweeping?.catch(() => undefined);
    await this.enforceClientCaps();
  }

  /** The broker's instances after a (re)start: their caps, which live only in this process. */
  async resume(instances: InstanceRef[]) {
    for (const i of instances) this.setCap(i.instanceId, i.plan);
  }

  async deprovision(ref: InstanceRef) {
    this.caps.delete(resourceName("skiffr", ref.instanceId));
    await this.upgradeUsers();
    const users = (await this.admin.send("ACL", ["USERS"])) as string[];
    const mine = `${resourceName("skiffr", ref.instanceId)}-`;
    for (const u of users) if (u.startsWith(mine)) await this.admin.send("ACL", ["DELUSER", u]);
    await this.saveAcl();
    await this.unlinkEverywhere(`${globEscape(RedisProvisioner.keyPrefix(ref.instanceId))}*`);
  }

  async bind(req: BindRequest) {
    await this.upgradeUsers();
    const user = RedisProvisioner.userName(req.instanceId, req.bindingId);
    const prefix = RedisProvisioner.keyPrefix(req.instanceId);
    const password = newPassword();
    const glob = globEscape(prefix);
    await this.setUser(user, ["reset", "on", `>${password}`, `~${glob}*`, `&${glob}*`, ...tenantCommandRules]);
    // What the server made of it, in case a future rule (or a server) reads differently than we think.
    const made = aclUserReply(await this.admin.send("ACL", ["GETUSER", user]));
    if (!made || made.flags?.includes("nopass") || !made.passwords?.length) {
      await this.admin.send("ACL", ["DELUSER", user]);
      throw new Error(`Redis made binding user ${user} without a password; deleted it`);
    }
    await this.saveAcl();
    const { hostname, port } = advertised(this.opts.adminUrl, this.opts.advertise, 6379);
    const creds = credentials("redis", { hostname, port, name: prefix.slice(0, -1), username: user, password }, "");
    creds.key_prefix = prefix;
    return { credentials: creds };
  }

  async unbind(ref: BindingRef) {
    // DELUSER also closes every connection authenticated as the user.
    await this.admin.send("ACL", ["DELUSER", RedisProvisioner.userName(ref.instanceId, ref.bindingId)]);
    await this.saveAcl();
  }

  private setCap(instanceId: string, plan: CatalogPlan) {
    const cap = planLimit(plan, "clients_per_instance");
    const key = resourceName("skiffr", instanceId);
    if (cap === undefined) this.caps.delete(key);
    else this.caps.set(key, cap);
    if (this.caps.size > 0 && !this.capTimer) {
      this.capTimer = setInterval(() => void this.enforceClientCaps().catch(() => undefined), this.opts.clientCapIntervalMs ?? 1000);
      // never the reason the broker stays up
      (this.capTimer as { unref?: () => void }).unref?.();
    }
  }

  /**
   * One sweep of the client caps: CLIENT LIST, grouped by instance through the user names, and for each
   * instance past its cap `CLIENT KILL ID` of its newest clients (ids grow with each connection), so the
   * connections that were there first keep working. A failed sweep (server down) is retried at the next tick.
   */
  enforceClientCaps(): Promise<void> {
    this.sweeping ??= this.sweepClientCaps().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async sweepClientCaps(): Promise<void> {
    if (this.caps.size === 0) return;
    const byInstance = new Map<string, number[]>();
    for (const line of String(await this.admin.send("CLIENT", ["LIST"])).split("\n")) {
      const user = /(?:^| )user=(\S+)/.exec(line)?.[1];
      const id = /(?:^| )id=(\d+)/.exec(line)?.[1];
      if (!user || !id || !tenantUser.test(user)) continue;
      const key = user.slice(0, user.indexOf("-"));
      if (this.caps.has(key)) byInstance.set(key, [...(byInstance.get(key) ?? []), Number(id)]);
    }
    for (const [key, ids] of byInstance) {
      const cap = this.caps.get(key)!;
      if (ids.length <= cap) continue;
      ids.sort((a, b) => a - b);
      for (const id of ids.slice(cap)) await this.admin.send("CLIENT", ["KILL", "ID", String(id)]).catch(() => undefined);
    }
  }

  private async setUser(user: string, rules: readonly string[]) {
    refusePasswordlessRules(rules);
    await this.admin.send("ACL", ["SETUSER", user, ...rules]);
  }

  /** Persists users when the server has an ACL file (servers/redis-server.ts configures one); else users live until restart. */
  private async saveAcl() {
    try {
      await this.admin.send("ACL", ["SAVE"]);
    } catch (err) {
      if (!/not configured to use an ACL file/i.test(String(err instanceof Error ? err.message : err))) throw err;
    }
  }

  /**
   * Deletes the instance's keys in every database that holds keys, not only 0: users made before SELECT,
   * MOVE and COPY were denied could write elsewhere. `INFO keyspace` names the non-empty databases; a
   * connection of its own does the SELECTs, so the shared admin connection stays on database 0.
   */
  private async unlinkEverywhere(pattern: string) {
    const info = String(await this.admin.send("INFO", ["keyspace"]));
    const dbs = [...info.matchAll(/^db(\d+):keys=/gm)].map((m) => Number(m[1]));
    if (dbs.length === 0) return;
    const sweeper = new RedisClient(this.opts.adminUrl, { autoReconnect: false, enableOfflineQueue: false, connectionTimeout: 5000 });
    try {
      await sweeper.connect();
      for (const db of dbs) {
        await sweeper.send("SELECT", [String(db)]);
        let cursor = "0";
        // SCAN visits every key once per full cycle; the bound only guards against a server that never ends one.
        for (let rounds = 0; rounds < 1_000_000; rounds++) {
          const [next, keys] = (await sweeper.send("SCAN", [cursor, "MATCH", pattern, "COUNT", "1000"])) as [string, string[]];
          if (keys.length > 0) await sweeper.send("UNLINK", keys);
          cursor = String(next);
          if (cursor === "0") break;
        }
      }
    } finally {
      sweeper.close();
    }
  }

  /**
   * Re-applies today's tenantCommandRules to the users already on the server (once per provisioner), so a
   * tightened rule reaches bindings made by an older broker too. Only command rules change: the key and
   * channel patterns and the password stay. A tenant user that logs in without a password (never made by
   * this code; an ACL file edited by hand) is disabled and its clients disconnected. Retried on the next
   * call if it fails.
   */
  private upgradeUsers(): Promise<void> {
    this.upgraded ??= (async () => {
      const acl = (await this.admin.send("ACL", ["LIST"])) as string[];
      const ours = acl.map((line) => line.split(" ")[1] ?? "").filter((u) => tenantUser.test(u));
      for (const u of ours) await this.setUser(u, tenantCommandRules);
      const open = aclUsersWithoutPassword(acl).filter((u) => tenantUser.test(u));
      for (const u of open) {
        await this.setUser(u, ["resetpass", "off"]);
        await this.admin.send("CLIENT", ["KILL", "USER", u]);
      }
      if (ours.length > 0) await this.saveAcl();
    })().catch((err) => {
      this.upgraded = undefined;
      throw err;
    });
    return this.upgraded;
  }

  async close() {
    clearInterval(this.capTimer);
    this.capTimer = undefined;
    await this.sweeping?.catch(() => undefined);
    this.admin.close();
  }
}

/** ACL GETUSER's reply: a map under RESP3 (what Bun speaks), a flat list of name, value pairs under RESP2. */
function aclUserReply(reply: unknown): { flags?: string[]; passwords?: string[] } | null {
  if (!Array.isArray(reply)) return (reply as { flags?: string[]; passwords?: string[] } | null) ?? null;
  const fields: Record<string, unknown> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) fields[String(reply[i])] = reply[i + 1];
  return fields;
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
