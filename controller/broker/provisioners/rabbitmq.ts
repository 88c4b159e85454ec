// RabbitMQ as a service through the management HTTP API: a vhost per instance and a user per binding
// with full permissions on that vhost only (and the `management` tag, so the app can use the HTTP API
// for its own vhost). Unbind closes the user's connections and deletes it. A plan caps the vhost's
// connections and queues with RabbitMQ's own vhost limits (max-connections, max-queues).

import type { BindRequest, BindingRef, CatalogPlan, CatalogService, InstanceRef, Provisioner, ProvisionRequest, UpdateRequest } from "../types.ts";
import { credentials, newPassword, resourceName } from "./names.ts";
import { limitedPlan, planLimit } from "./plan-limits.ts";

/** Enforced by RabbitMQ on the vhost: `max-connections` refuses the next AMQP connection, `max-queues` the next queue.declare. */
const vhostLimits = (conns: number, queues: number) => ({
  connections_per_instance: { value: conns, reads: "connections", how: "the vhost's max-connections" },
  queues_per_instance: { value: queues, reads: "queues", how: "the vhost's max-queues" },
});
/** The plan's figure → RabbitMQ's limit name. */
const limitNames = { connections_per_instance: "max-connections", queues_per_instance: "max-queues" } as const;

export interface RabbitmqProvisionerOptions {
  /** The management API with an administrator: http://admin:pw@host:15672 */
  managementUrl: string;
  /** AMQP host/port apps connect to (default: the management host, port 5672). */
  amqp?: { host?: string; port?: number };
  service?: Partial<CatalogService>;
}

export const rabbitmqService: CatalogService = {
  id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f41",
  name: "rabbitmq",
  description: "A virtual host on a shared RabbitMQ server",
  bindable: true,
  tags: ["rabbitmq", "amqp", "messaging"],
  plan_updateable: true,
  instances_retrievable: true,
  bindings_retrievable: true,
  metadata: { displayName: "RabbitMQ" },
  plans: [
    limitedPlan({ id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f42", name: "shared", summary: "A vhost on a shared RabbitMQ server", limits: vhostLimits(20, 50) }),
    limitedPlan({ id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f43", name: "shared-large", summary: "A vhost on a shared RabbitMQ server", limits: vhostLimits(100, 500) }),
  ],
};

export class RabbitmqProvisioner implements Provisioner {
  readonly service: CatalogService;
  private readonly base: string;
  private readonly auth: string;

  constructor(private readonly opts: RabbitmqProvisionerOptions) {
    this.service = { ...rabbitmqService, ...opts.service };
    const u = new URL(opts.managementUrl);
    this.auth = `Basic ${btoa(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`)}`;
    u.username = "";
    u.password = "";
    this.base = u.toString().replace(/\/+$/, "");
  }

  static vhost(instanceId: string) {
    return resourceName("skiffvh", instanceId);
  }

  static userName(bindingId: string) {
    return resourceName("skiffu", bindingId);
  }

  async provision(req: ProvisionRequest) {
    await this.api("PUT", `/api/vhosts/${RabbitmqProvisioner.vhost(req.instanceId)}`, { description: `skiff instance ${req.instanceId}` });
    await this.applyLimits(req.instanceId, req.plan);
  }

  /**
   * A plan change: the vhost's limits change at once. RabbitMQ checks them when a connection opens or a
   * queue is declared, so what already exists stays (a smaller plan refuses new ones until fewer remain).
   */
  async update(req: UpdateRequest) {
    await this.applyLimits(req.instanceId, req.plan);
  }

  private async applyLimits(instanceId: string, plan: CatalogPlan) {
    const vhost = RabbitmqProvisioner.vhost(instanceId);
    for (const [figure, limit] of Object.entries(limitNames)) {
      const value = planLimit(plan, figure);
      if (value === undefined) await this.api("DELETE", `/api/vhost-limits/${vhost}/${limit}`, undefined, true);
      else await this.api("PUT", `/api/vhost-limits/${vhost}/${limit}`, { value });
    }
  }

  async deprovision(ref: InstanceRef) {
    const vhost = RabbitmqProvisioner.vhost(ref.instanceId);
    const perms = (await this.api("GET", `/api/vhosts/${vhost}/permissions`, undefined, true)) as { user: string }[] | undefined;
    for (const p of perms ?? []) if (/^skiffu[0-9a-f]+$/.test(p.user)) await this.deleteUser(p.user);
    await this.api("DELETE", `/api/vhosts/${vhost}`, undefined, true);
  }

  async bind(req: BindRequest) {
    const vhost = RabbitmqProvisioner.vhost(req.instanceId);
    const user = RabbitmqProvisioner.userName(req.bindingId);
    const password = newPassword();
    await this.api("GET", `/api/vhosts/${vhost}`);
    await this.api("PUT", `/api/users/${user}`, { password, tags: "management" });
    await this.api("PUT", `/api/permissions/${vhost}/${user}`, { configure: ".*", write: ".*", read: ".*" });
    const mgmt = new URL(this.base);
    const hostname = this.opts.amqp?.host ?? mgmt.hostname;
    const port = this.opts.amqp?.port ?? 5672;
    const creds = credentials("amqp", { hostname, port, name: vhost, username: user, password }, `/${vhost}`);
    creds.vhost = vhost;
    creds.http_api_uri = `${mgmt.protocol}//${user}:${password}@${mgmt.host}/api/`;
    return { credentials: creds };
  }

  async unbind(ref: BindingRef) {
    await this.deleteUser(RabbitmqProvisioner.userName(ref.bindingId));
  }

  private async deleteUser(user: string) {
    await this.api("DELETE", `/api/users/${user}`, undefined, true);
    // Deleting a user does not end its open AMQP connections: close them by name.
    const conns = (await this.api("GET", `/api/connections?columns=name,user`, undefined, true)) as { name: string; user: string }[] | undefined;
    for (const c of conns ?? []) if (c.user === user) await this.api("DELETE", `/api/connections/${encodeURIComponent(c.name)}`, undefined, true);
  }

  /** One management API call; `missingOk` turns 404 into undefined (deletes are idempotent). */
  private async api(method: string, path: string, body?: unknown, missingOk = false): Promise<unknown> {
    const res = await fetch(this.base + path, {
      method,
      headers: { authorization: this.auth, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    if (res.status === 404 && missingOk) return undefined;
    if (!res.ok) throw new Error(`RabbitMQ management API ${method} ${path}: ${res.status} ${(await res.text()).slice(0, 200)}`);
    const text = await res.text();
    return text ? JSON.parse(text) : undefined;
  }
}
