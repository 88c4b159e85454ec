// A Provisioner that keeps its "databases" in memory, with knobs to be slow or to fail: the example in
// README.md and the stand-in for a real service in the broker's and the client's tests.

import { ServiceError } from "./errors.ts";
import type { BindRequest, BindingRef, CatalogService, InstanceRef, ProvisionRequest, Provisioner } from "./types.ts";

export interface MemoryProvisionerOptions {
  /** Each operation waits this long first (ms). */
  delayMs?: number;
  asyncOnly?: boolean;
  /** Makes provision throw (after creating the instance, like a real half-done provision). */
  failProvision?: boolean;
  /** Makes bind throw after registering the binding. */
  failBind?: boolean;
  serviceId?: string;
}

export class MemoryProvisioner implements Provisioner {
  readonly service: CatalogService;
  readonly asyncOnly: boolean;
  readonly instances = new Map<string, { plan: string; bindings: Set<string> }>();
  readonly calls: string[] = [];

  constructor(private readonly opts: MemoryProvisionerOptions = {}) {
    this.asyncOnly = opts.asyncOnly ?? false;
    this.service = {
      id: opts.serviceId ?? "memory-service-id",
      name: "memory",
      description: "A key-value store in the broker's memory",
      bindable: true,
      tags: ["memory", "test"],
      plan_updateable: true,
      plans: [
        { id: "memory-small-id", name: "small", description: "Small", free: true },
        { id: "memory-large-id", name: "large", description: "Large", free: false },
      ],
    };
  }

  async provision(req: ProvisionRequest) {
    this.calls.push(`provision ${req.instanceId}`);
    await this.wait();
    if (req.params.size === "huge") throw new ServiceError(400, "size huge is not offered; use small or large");
    this.instances.set(req.instanceId, { plan: req.plan.name, bindings: new Set() });
    if (this.opts.failProvision) throw new Error("the memory service is broken today");
    return { dashboard_url: `http://memory.example/${req.instanceId}` };
  }

  async update(req: ProvisionRequest) {
    this.calls.push(`update ${req.instanceId}`);
    await this.wait();
    const inst = this.instances.get(req.instanceId);
    if (inst) inst.plan = req.plan.name;
  }

  async deprovision(ref: InstanceRef) {
    this.calls.push(`deprovision ${ref.instanceId}`);
    await this.wait();
    this.instances.delete(ref.instanceId);
  }

  async bind(req: BindRequest) {
    this.calls.push(`bind ${req.bindingId}`);
    await this.wait();
    const inst = this.instances.get(req.instanceId);
    if (!inst) throw new Error(`instance ${req.instanceId} is gone`);
    inst.bindings.add(req.bindingId);
    if (this.opts.failBind) throw new Error("the memory service lost the binding");
    const password = `pw-${req.bindingId}`;
    return {
      credentials: {
        uri: `memory://${req.bindingId}:${password}@127.0.0.1:1/${req.instanceId}`,
        hostname: "127.0.0.1",
        port: 1,
        name: req.instanceId,
        username: req.bindingId,
        password,
      },
    };
  }

  async unbind(ref: BindingRef) {
    this.calls.push(`unbind ${ref.bindingId}`);
    await this.wait();
    this.instances.get(ref.instanceId)?.bindings.delete(ref.bindingId);
  }

  private async wait() {
    if (this.opts.delayMs) await Bun.sleep(this.opts.delayMs);
  }
}
