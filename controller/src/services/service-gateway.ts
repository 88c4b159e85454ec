// What the controller does with service brokers: registers them (catalog → offerings and plans),
// provisions and deprovisions instances, binds and unbinds apps, each broker call running in the
// background while the record shows `last_operation` (in progress → succeeded/failed). Gives the
// launcher an app's bindings, decrypted, for every `dea.<id>.start`. Credentials are never logged and
// never put in events; they are stored sealed (CredentialBox).

import { serviceUrlVariables, type Logger, type ServiceBinding } from "../../../bus/index.ts";
import { BrokerClient, BrokerClientError, serviceBindingOf, type BoundService, type BrokerClientOptions, type CatalogService, type Credentials } from "../../broker/index.ts";
import type { Actor, AppRecord, SpaceRecord, Store } from "../db/store.ts";
import { newGuid } from "../db/store.ts";
import type { Queryable } from "../db/database.ts";
import type { CredentialBox } from "./credential-box.ts";
import { OrphanCleanup, type OrphanRetryOptions } from "./orphan-cleanup.ts";
import type { BindingRecord, BrokerRecord, InstanceContext, InstanceRecord, OfferingRecord, PlanRecord, ServiceStore } from "./service-store.ts";

/** A refusal the API shows as 422 (or 502 when the broker is at fault); `status` picks which. */
export class ServiceRequestError extends Error {
  override name = "ServiceRequestError";
  constructor(message: string, readonly status: 404 | 409 | 422 | 502 = 422) {
    super(message);
  }
}

export interface GatewayOptions {
  /** BrokerClient settings (timeouts, polling); tests shorten them */
  client?: Partial<Omit<BrokerClientOptions, "url" | "username" | "password">>;
  /** Background retries of broker deletes that orphan mitigation could not finish (orphan-cleanup.ts) */
  orphanRetry?: OrphanRetryOptions;
}

export class ServiceGateway {
  private readonly running = new Set<Promise<void>>();
  private readonly orphans: OrphanCleanup;

  constructor(
    private readonly deps: { store: Store; services: ServiceStore; box: CredentialBox; log: Logger },
    private readonly opts: GatewayOptions = {},
  ) {
    this.orphans = new OrphanCleanup(
      { services: deps.services, client: (b) => this.client(b), log: deps.log, run: (what, work) => this.background(what, work) },
      opts.orphanRetry,
    );
  }

  /** The records, for the API's reads. */
  get records(): ServiceStore {
    return this.deps.services;
  }

  /** Waits for every background broker operation (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running]);
  }

  /**
   * At boot: operations cut short by a controller restart can never finish, so they show as failed; and
   * the retries of orphans a previous process left at brokers resume.
   */
  async failInterrupted(): Promise<void> {
    const why = "the controller restarted during this operation; retry it (delete and create again)";
    await this.deps.services.db.run(`UPDATE service_instances SET last_op_state = 'failed', last_op_description = ? WHERE last_op_state = 'in progress'`, [why]);
    await this.deps.services.db.run(`UPDATE service_bindings SET last_op_state = 'failed', last_op_description = ? WHERE last_op_state = 'in progress'`, [why]);
    await this.orphans.resume();
  }

  /** Stops the orphan retries' timer (the process is stopping; the next start resumes them). */
  stop(): void {
    this.orphans.stop();
  }

  private async client(b: BrokerRecord): Promise<BrokerClient> {
    const password = await this.deps.box.open<string>(b.password_sealed);
    return new BrokerClient({ url: b.url, username: b.username, password, log: this.deps.log, ...this.opts.client });
  }

  private background(what: string, work: () => Promise<void>): void {
    const p = work().catch((err) => this.deps.log.error("service operation failed unexpectedly", { what, error: err as Error }));
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private event(q: Queryable, actor: Actor, type: string, target: { type: string; guid: string; name: string; space?: string | null }, data: Record<string, unknown> = {}) {
    return this.deps.store.recordEvent(q, {
      type, actor_guid: actor.guid, actor_name: actor.name, target_type: target.type, target_guid: target.guid,
      target_name: target.name, space_guid: target.space ?? null, data,
    });
  }

  // ---- brokers ----

  private async fetchCatalog(url: string, username: string, password: string): Promise<CatalogService[]> {
    try {
      return (await new BrokerClient({ url, username, password, log: this.deps.log, ...this.opts.client }).catalog()).services;
    } catch (err) {
      throw new ServiceRequestError(`could not fetch the catalog from ${url}: ${(err as Error).message}`, 502);
    }
  }

  /** Stores the catalog: new offerings/plans added, changed ones updated, vanished ones removed when unused. */
  private async storeCatalog(q: Queryable, brokerGuid: string, services: CatalogService[]): Promise<void> {
    const s = this.deps.services;
    const now = Date.now();
    const existing = await s.offerings(brokerGuid, q);
    const keep = new Set<string>();
    for (const svc of services) {
      const prior = existing.find((o) => o.broker_service_id === svc.id);
      const offering: OfferingRecord = {
        guid: prior?.guid ?? newGuid(), broker_guid: brokerGuid, broker_service_id: svc.id, name: svc.name,
        description: svc.description ?? "", bindable: svc.bindable !== false, tags: svc.tags ?? [], created_at: prior?.created_at ?? now,
      };
      keep.add(offering.guid);
      await s.upsertOffering(q, offering);
      const plans = await s.plans([offering.guid], q);
      const keepPlans = new Set<string>();
      for (const p of svc.plans ?? []) {
        const priorPlan = plans.find((x) => x.broker_plan_id === p.id);
        const plan: PlanRecord = {
          guid: priorPlan?.guid ?? newGuid(), offering_guid: offering.guid, broker_plan_id: p.id, name: p.name,
          description: p.description ?? "", free: p.free !== false, created_at: priorPlan?.created_at ?? now,
        };
        keepPlans.add(plan.guid);
        await s.upsertPlan(q, plan);
      }
      for (const gone of plans.filter((x) => !keepPlans.has(x.guid)))
        if ((await s.countInstancesOfPlans([gone.guid], q)) === 0) await s.deletePlan(q, gone.guid);
    }
    for (const gone of existing.filter((o) => !keep.has(o.guid))) {
      const plans = await s.plans([gone.guid], q);
      if ((await s.countInstancesOfPlans(plans.map((p) => p.guid), q)) === 0) await s.deleteOffering(q, gone.guid);
    }
  }

  async registerBroker(actor: Actor, b: { name: string; url: string; username: string; password: string }): Promise<BrokerRecord> {
    if (await this.deps.services.broker(b.name)) throw new ServiceRequestError(`a service broker named ${b.name} already exists`, 409);
    const services = await this.fetchCatalog(b.url, b.username, b.password);
    const now = Date.now();
    const record: BrokerRecord = { guid: newGuid(), name: b.name, url: b.url, username: b.username, password_sealed: await this.deps.box.seal(b.password), created_at: now, updated_at: now };
    await this.deps.store.tx(async (q) => {
      await this.deps.services.insertBroker(q, record);
      await this.storeCatalog(q, record.guid, services);
      await this.event(q, actor, "audit.service_broker.create", { type: "service_broker", guid: record.guid, name: record.name }, { url: b.url, services: services.map((x) => x.name) });
    });
    this.deps.log.info("service broker registered", { name: b.name, url: b.url, services: services.map((x) => x.name).join(",") });
    return record;
  }

  /** New URL and/or credentials; re-reads the catalog either way (CF's update-service-broker). */
  async updateBroker(actor: Actor, broker: BrokerRecord, patch: { url?: string; username?: string; password?: string }): Promise<BrokerRecord> {
    const url = patch.url ?? broker.url;
    const username = patch.username ?? broker.username;
    const password = patch.password ?? (await this.deps.box.open<string>(broker.password_sealed));
    const services = await this.fetchCatalog(url, username, password);
    const password_sealed = patch.password !== undefined ? await this.deps.box.seal(password) : broker.password_sealed;
    await this.deps.store.tx(async (q) => {
      await this.deps.services.updateBroker(q, broker.guid, { url, username, password_sealed });
      await this.storeCatalog(q, broker.guid, services);
      await this.event(q, actor, "audit.service_broker.update", { type: "service_broker", guid: broker.guid, name: broker.name }, { url });
    });
    return (await this.deps.services.broker(broker.guid))!;
  }

  async deleteBroker(actor: Actor, broker: BrokerRecord): Promise<void> {
    const plans = await this.deps.services.plans((await this.deps.services.offerings(broker.guid)).map((o) => o.guid));
    const count = await this.deps.services.countInstancesOfPlans(plans.map((p) => p.guid));
    if (count > 0) throw new ServiceRequestError(`the broker ${broker.name} still has ${count} service instance(s): delete them first (skiff services, skiff delete-service NAME)`);
    await this.deps.store.tx(async (q) => {
      await this.deps.services.deleteBroker(q, broker.guid);
      await this.event(q, actor, "audit.service_broker.delete", { type: "service_broker", guid: broker.guid, name: broker.name });
    });
  }

  // ---- instances ----

  async createInstance(actor: Actor, space: SpaceRecord, plan: PlanRecord, name: string, params: Record<string, unknown>): Promise<InstanceRecord> {
    const s = this.deps.services;
    if (await s.instanceByName(space.guid, name)) throw new ServiceRequestError(`a service instance named ${name} already exists in this space`, 409);
    const offering = (await s.offering(plan.offering_guid))!;
    const broker = (await s.broker(offering.broker_guid))!;
    const now = Date.now();
    const instance: InstanceRecord = {
      guid: newGuid(), name, space_guid: space.guid, plan_guid: plan.guid, dashboard_url: null,
      last_operation: { type: "create", state: "in progress", description: null, updated_at: now }, created_at: now, updated_at: now,
    };
    await this.deps.store.tx(async (q) => {
      await s.insertInstance(q, instance);
      await this.event(q, actor, "audit.service_instance.create", { type: "service_instance", guid: instance.guid, name, space: space.guid }, { service_offering: offering.name, service_plan: plan.name });
    });
    const client = await this.client(broker);
    this.background(`provision ${name}`, async () => {
      try {
        const res = await client.provision({
          instanceId: instance.guid, serviceId: offering.broker_service_id, planId: plan.broker_plan_id, params,
          organizationGuid: space.org_guid, spaceGuid: space.guid,
          context: { platform: "skiff", organization_guid: space.org_guid, space_guid: space.guid, instance_name: name },
        });
        await s.setInstanceOperation(instance.guid, { type: "create", state: "succeeded", description: null }, { dashboard_url: res.dashboard_url ?? null });
        this.deps.log.info("service instance provisioned", { name, offering: offering.name, plan: plan.name });
      } catch (err) {
        await s.setInstanceOperation(instance.guid, { type: "create", state: "failed", description: brokerFailure(err) });
        this.deps.log.warn("provision failed", { name, offering: offering.name, error: (err as Error).message, orphan: (err as BrokerClientError).orphan });
        if ((err as BrokerClientError).orphan === "left") await this.orphans.record("instance", instance.guid, (err as Error).message);
      }
    });
    return instance;
  }

  /**
   * `skiff update-service NAME -p PLAN [-c JSON]`: asks the broker to move the instance to another plan of
   * its offering and/or give it new parameters, in the background like a create. The broker's live catalog
   * decides whether the plan may change (plan_updateable), before anything is recorded. The instance keeps
   * its plan until the broker says the change succeeded; a failed change leaves it on the old one, usable.
   */
  async updateInstance(actor: Actor, ctx: InstanceContext, change: { plan?: PlanRecord; params?: Record<string, unknown> }): Promise<InstanceRecord> {
    const { instance, plan: current, offering, broker } = ctx;
    const s = this.deps.services;
    const target = change.plan ?? current;
    if (instance.last_operation.state === "in progress")
      throw new ServiceRequestError(`the service instance ${instance.name} has an operation in progress (${instance.last_operation.type}); wait for it to finish`, 409);
    if (instance.last_operation.type === "create" && instance.last_operation.state !== "succeeded")
      throw new ServiceRequestError(`the service instance ${instance.name} was never created (${instance.last_operation.description ?? "its create failed"}); delete it and create it again`);
    if (target.offering_guid !== offering.guid) throw new ServiceRequestError(`plan ${target.name} belongs to another service offering than ${offering.name}: see skiff marketplace -e ${offering.name}`);
    if (target.guid === current.guid && change.params === undefined) return instance;
    const client = await this.client(broker);
    if (target.guid !== current.guid) await this.refuseFixedPlan(client, offering, current, target);
    const space = await this.deps.store.spaceByGuid(instance.space_guid);
    await this.deps.store.tx(async (q) => {
      await s.setInstanceOperation(instance.guid, { type: "update", state: "in progress", description: null }, {}, q);
      await this.event(q, actor, "audit.service_instance.update", { type: "service_instance", guid: instance.guid, name: instance.name, space: instance.space_guid }, {
        service_offering: offering.name, service_plan: target.name, previous_service_plan: current.name, parameters_changed: change.params !== undefined,
      });
    });
    this.background(`update ${instance.name}`, async () => {
      try {
        await client.update({
          instanceId: instance.guid, serviceId: offering.broker_service_id, planId: target.broker_plan_id, params: change.params, previousPlanId: current.broker_plan_id,
          context: { platform: "skiff", organization_guid: space?.org_guid, space_guid: instance.space_guid, instance_name: instance.name },
        });
        await s.setInstanceOperation(instance.guid, { type: "update", state: "succeeded", description: null }, { plan_guid: target.guid });
        this.deps.log.info("service instance updated", { name: instance.name, offering: offering.name, plan: target.name, previous_plan: current.name });
      } catch (err) {
        await s.setInstanceOperation(instance.guid, { type: "update", state: "failed", description: `${(err as Error).message}; the instance stays on plan ${current.name}` });
        this.deps.log.warn("service instance update failed", { name: instance.name, offering: offering.name, plan: target.name, error: (err as Error).message });
      }
    });
    return (await s.instance(instance.guid)) ?? instance;
  }

  /** OSB: a platform MUST NOT ask for a plan change the broker's catalog does not offer (plan_updateable). */
  private async refuseFixedPlan(client: BrokerClient, offering: OfferingRecord, from: PlanRecord, to: PlanRecord): Promise<void> {
    let services: CatalogService[];
    try {
      services = (await client.catalog()).services;
    } catch (err) {
      throw new ServiceRequestError(`could not read the broker's catalog to check the plan change: ${(err as Error).message}`, 502);
    }
    const service = services.find((x) => x.id === offering.broker_service_id);
    const fromPlan = service?.plans.find((p) => p.id === from.broker_plan_id);
    if (!service || !service.plans.some((p) => p.id === to.broker_plan_id))
      throw new ServiceRequestError(`the broker no longer offers plan ${to.name} of ${offering.name}; an admin can re-read its catalog with skiff update-service-broker`);
    if (!(fromPlan?.plan_updateable ?? service.plan_updateable ?? false))
      throw new ServiceRequestError(`${offering.name} instances on plan ${from.name} cannot change plan (the broker's catalog says plan_updateable: false); create a new instance on plan ${to.name} and move the data`);
  }

  async deleteInstance(actor: Actor, ctx: InstanceContext): Promise<void> {
    const { instance, plan, offering, broker } = ctx;
    const s = this.deps.services;
    if (instance.last_operation.state === "in progress")
      throw new ServiceRequestError(`the service instance ${instance.name} has an operation in progress (${instance.last_operation.type}); wait for it to finish`, 409);
    const bound = await s.bindings({ instanceGuid: instance.guid });
    if (bound.length) {
      const apps = await Promise.all(bound.map(async (b) => (await this.deps.store.appByGuid(b.app_guid))?.name ?? b.app_guid));
      throw new ServiceRequestError(`the service instance ${instance.name} is bound to ${apps.join(", ")}: unbind it first (skiff unbind-service ${apps[0]} ${instance.name})`);
    }
    await this.deps.store.tx(async (q) => {
      await s.setInstanceOperation(instance.guid, { type: "delete", state: "in progress", description: null }, {}, q);
      await this.event(q, actor, "audit.service_instance.delete", { type: "service_instance", guid: instance.guid, name: instance.name, space: instance.space_guid }, { service_offering: offering.name, service_plan: plan.name });
    });
    const client = await this.client(broker);
    this.background(`deprovision ${instance.name}`, async () => {
      try {
        await client.deprovision({ instanceId: instance.guid, serviceId: offering.broker_service_id, planId: plan.broker_plan_id });
        await this.deps.store.tx((q) => s.deleteInstance(q, instance.guid));
        await this.orphans.forget(instance.guid);
        this.deps.log.info("service instance deprovisioned", { name: instance.name });
      } catch (err) {
        await s.setInstanceOperation(instance.guid, { type: "delete", state: "failed", description: `${(err as Error).message}; retry with skiff delete-service ${instance.name}` });
      }
    });
  }

  // ---- bindings ----

  async createBinding(actor: Actor, app: AppRecord, ctx: InstanceContext, params: Record<string, unknown>): Promise<BindingRecord> {
    const { instance, plan, offering, broker } = ctx;
    const s = this.deps.services;
    if (app.space_guid !== instance.space_guid) throw new ServiceRequestError("the app and the service instance are in different spaces");
    if (!offering.bindable) throw new ServiceRequestError(`${offering.name} instances cannot be bound (the broker says bindable: false)`);
    // ready: created, nothing running, not being deleted (a failed plan change leaves it usable on its old plan)
    const op = instance.last_operation;
    if (op.state === "in progress" || op.type === "delete" || (op.type === "create" && op.state !== "succeeded"))
      throw new ServiceRequestError(`the service instance ${instance.name} is not ready (last operation: ${op.type} ${op.state}); see skiff service ${instance.name}`, 409);
    const prior = (await s.bindings({ appGuid: app.guid, instanceGuid: instance.guid }))[0];
    if (prior) throw new ServiceRequestError(`${app.name} is already bound to ${instance.name}`, 409);
    const now = Date.now();
    const binding: BindingRecord = {
      guid: newGuid(), app_guid: app.guid, instance_guid: instance.guid, credentials_sealed: null,
      last_operation: { type: "create", state: "in progress", description: null, updated_at: now }, created_at: now, updated_at: now,
    };
    await this.deps.store.tx(async (q) => {
      await s.insertBinding(q, binding);
      await this.event(q, actor, "audit.service_binding.create", { type: "service_binding", guid: binding.guid, name: `${app.name} → ${instance.name}`, space: app.space_guid }, { app: app.name, service_instance: instance.name });
    });
    const client = await this.client(broker);
    this.background(`bind ${app.name} to ${instance.name}`, async () => {
      try {
        const { credentials } = await client.bind({
          instanceId: instance.guid, bindingId: binding.guid, serviceId: offering.broker_service_id, planId: plan.broker_plan_id, appGuid: app.guid, params,
          context: { platform: "skiff", space_guid: app.space_guid, app_guid: app.guid },
        });
        await s.setBindingOperation(binding.guid, { type: "create", state: "succeeded", description: null }, await this.deps.box.seal(credentials));
        this.deps.log.info("service bound", { app: app.name, instance: instance.name });
      } catch (err) {
        await s.setBindingOperation(binding.guid, { type: "create", state: "failed", description: brokerFailure(err) });
        this.deps.log.warn("bind failed", { app: app.name, instance: instance.name, error: (err as Error).message, orphan: (err as BrokerClientError).orphan });
        if ((err as BrokerClientError).orphan === "left") await this.orphans.record("binding", binding.guid, (err as Error).message);
      }
    });
    return binding;
  }

  /** Unbinds at the broker in the background; `wait` runs it to the end (deleting an app). */
  async deleteBinding(actor: Actor, binding: BindingRecord, opts: { wait?: boolean } = {}): Promise<void> {
    const s = this.deps.services;
    const ctx = await s.instanceContext(binding.instance_guid);
    if (!ctx) throw new ServiceRequestError("the binding's service instance is gone", 404);
    if (binding.last_operation.state === "in progress") throw new ServiceRequestError(`this binding has an operation in progress (${binding.last_operation.type}); wait for it to finish`, 409);
    const app = await this.deps.store.appByGuid(binding.app_guid);
    const appName = app?.name ?? binding.app_guid;
    await this.deps.store.tx(async (q) => {
      await q.run(`UPDATE service_bindings SET last_op_type = 'delete', last_op_state = 'in progress', last_op_description = NULL, updated_at = ? WHERE guid = ?`, [Date.now(), binding.guid]);
      await this.event(q, actor, "audit.service_binding.delete", { type: "service_binding", guid: binding.guid, name: `${appName} → ${ctx.instance.name}`, space: ctx.instance.space_guid }, { app: appName, service_instance: ctx.instance.name });
    });
    const client = await this.client(ctx.broker);
    const work = async () => {
      try {
        await client.unbind({ instanceId: ctx.instance.guid, bindingId: binding.guid, serviceId: ctx.offering.broker_service_id, planId: ctx.plan.broker_plan_id, appGuid: binding.app_guid });
        await this.deps.store.tx((q) => s.deleteBinding(q, binding.guid));
        await this.orphans.forget(binding.guid);
        this.deps.log.info("service unbound", { app: appName, instance: ctx.instance.name });
      } catch (err) {
        await s.setBindingOperation(binding.guid, { type: "delete", state: "failed", description: `${(err as Error).message}; retry with skiff unbind-service ${appName} ${ctx.instance.name}` });
        if (opts.wait) throw new ServiceRequestError(`could not unbind ${ctx.instance.name} from ${appName}: ${(err as Error).message}`, 502);
      }
    };
    if (opts.wait) await work();
    else this.background(`unbind ${appName} from ${ctx.instance.name}`, work);
  }

  /** Unbinds every binding of an app (before the app is deleted); throws when one cannot be unbound. */
  async unbindAll(actor: Actor, appGuid: string): Promise<void> {
    for (const b of await this.deps.services.bindings({ appGuid })) {
      if (b.last_operation.state === "in progress") throw new ServiceRequestError("the app has a service binding operation in progress; wait for it to finish", 409);
      await this.deleteBinding(actor, b, { wait: true });
    }
  }

  async credentialsOf(binding: BindingRecord): Promise<Credentials | undefined> {
    return binding.credentials_sealed ? this.deps.box.open<Credentials>(binding.credentials_sealed) : undefined;
  }

  /** The app's usable bindings in CF's VCAP_SERVICES shape, oldest first (the first database wins DATABASE_URL). */
  async boundServices(appGuid: string): Promise<BoundService[]> {
    const out: BoundService[] = [];
    for (const b of await this.deps.services.bindings({ appGuid })) {
      // a binding being deleted still works until the broker removed it; a failed or pending one does not
      if (!b.credentials_sealed || (b.last_operation.type === "create" && b.last_operation.state !== "succeeded")) continue;
      const ctx = await this.deps.services.instanceContext(b.instance_guid);
      if (!ctx) continue;
      out.push({
        name: ctx.instance.name, label: ctx.offering.name, plan: ctx.plan.name, tags: ctx.offering.tags,
        instanceGuid: ctx.instance.guid, bindingGuid: b.guid, credentials: (await this.credentialsOf(b))!,
      });
    }
    return out;
  }
}

/**
 * What `dea.<id>.start` carries for an app: its bindings in the bus's shape, databases first (stable,
 * the order apps have always seen in VCAP_SERVICES), and their URL variables for env, under the user's
 * own. The agent derives the same variables from `services` (bus/service-env.ts); env still carries them
 * for agents from before it did, which set only DATABASE_URL.
 */
export async function servicesForStart(gateway: Pick<ServiceGateway, "boundServices">, appGuid: string): Promise<{ services: ServiceBinding[]; env: Record<string, string> }> {
  const services = (await gateway.boundServices(appGuid)).map(serviceBindingOf);
  const isDatabase = (b: ServiceBinding) => serviceUrlVariables([b]).DATABASE_URL !== undefined;
  return {
    services: [...services.filter(isDatabase), ...services.filter((b) => !isDatabase(b))],
    env: serviceUrlVariables(services),
  };
}

function brokerFailure(err: unknown): string {
  const orphan = (err as BrokerClientError).orphan;
  const note = orphan === "cleaned" ? " (the broker's partial resource was removed)" : orphan === "left" ? " (the broker may still hold a partial resource; skiff keeps retrying its removal in the background)" : "";
  return `${(err as Error).message}${note}`;
}
