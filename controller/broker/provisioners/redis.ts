// Redis as a service on a shared redis-server, isolated by ACL (Redis 6+): each binding is an ACL user
// allowed only keys and channels under its instance's prefix `<instance>:`, with the commands that act
// on the whole server (FLUSHALL, KEYS, SCAN, CONFIG, CLIENT, …) removed. Unbind deletes the user, which
// also disconnects its clients. Why ACLs rather than a server per instance: README.md.

import { RedisClient } from "bun";
import type { BindRequest, BindingRef, CatalogService, InstanceRef, Provisioner, ProvisionRequest } from "../types.ts";
import { advertised, credentials, newPassword, resourceName } from "./names.ts";

export interface RedisProvisionerOptions {
  /** The admin (e.g. the default user): redis://default:pw@host:port */
  adminUrl: string;
  advertise?: { host?: string; port?: number };
  service?: Partial<CatalogService>;
}

export const redisService: CatalogService = {
  id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f31",
  name: "redis",
  description: "A key prefix on a shared Redis server, isolated by ACL users",
  bindable: true,
  tags: ["redis", "key-value"],
  plan_updateable: false,
  bindings_retrievable: true,
  metadata: { displayName: "Redis" },
  plans: [{ id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f32", name: "shared", description: "Keys under <instance>: on a shared Redis 7 server", free: true }],
};

/** What a tenant may run: everything on its own keys, nothing that reads or changes the whole server. */
export const tenantCommandRules = ["+@all", "-@admin", "-@dangerous", "-keys", "-scan", "-randomkey", "-swapdb", "-flushall", "-flushdb"] as const;

export class RedisProvisioner implements Provisioner {
  readonly service: CatalogService;
  private readonly admin: RedisClient;

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

  async provision(_req: ProvisionRequest) {
    // Nothing to create: the instance is a key prefix. Checking the server now fails fast when it is down.
    await this.admin.send("PING", []);
  }

  async deprovision(ref: InstanceRef) {
    const users = (await this.admin.send("ACL", ["USERS"])) as string[];
    const mine = `${resourceName("skiffr", ref.instanceId)}-`;
    for (const u of users) if (u.startsWith(mine)) await this.admin.send("ACL", ["DELUSER", u]);
    await this.saveAcl();
    const pattern = `${globEscape(RedisProvisioner.keyPrefix(ref.instanceId))}*`;
    let cursor = "0";
    // SCAN visits every key once per full cycle; the bound only guards against a server that never ends one.
    for (let rounds = 0; rounds < 1_000_000; rounds++) {
      const [next, keys] = (await this.admin.send("SCAN", [cursor, "MATCH", pattern, "COUNT", "1000"])) as [string, string[]];
      if (keys.length > 0) await this.admin.send("UNLINK", keys);
      cursor = String(next);
      if (cursor === "0") break;
    }
  }

  async bind(req: BindRequest) {
    const user = RedisProvisioner.userName(req.instanceId, req.bindingId);
    const prefix = RedisProvisioner.keyPrefix(req.instanceId);
    const password = newPassword();
    const glob = globEscape(prefix);
    await this.admin.send("ACL", ["SETUSER", user, "reset", "on", `>${password}`, `~${glob}*`, `&${glob}*`, ...tenantCommandRules]);
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

  /** Persists users when the server has an ACL file (servers/redis-server.ts configures one); else users live until restart. */
  private async saveAcl() {
    try {
      await this.admin.send("ACL", ["SAVE"]);
    } catch (err) {
      if (!/not configured to use an ACL file/i.test(String(err instanceof Error ? err.message : err))) throw err;
    }
  }

  async close() {
    this.admin.close();
  }
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
