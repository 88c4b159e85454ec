// The OSB v2.17 semantics without HTTP: idempotency, conflicts, async operations and their last_operation
// state, for any set of Provisioners. broker.ts maps HTTP requests onto these methods; each returns the
// status and body the spec prescribes.

import { randomUUID } from "node:crypto";
import type { Logger } from "../../bus/log.ts";
import { ServiceError } from "./errors.ts";
import { objectField, optionalObject, requiredString, sameJson, stringField } from "./request-fields.ts";
import type { BindingRecord, BrokerStore, InstanceRecord, OperationKind, OperationRecord } from "./store.ts";
import { BrokerErrorCodes, type CatalogPlan, type CatalogService, type Credentials, type Provisioner } from "./types.ts";

export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** An operation running in the background, and its id for last_operation. */
interface Started {
  started: Promise<Reply>;
  operation: string;
  /** For creates: forgets the resource when the provisioner refused it (4xx) in a synchronous answer. */
  dropIfRefused?: () => Promise<void>;
}

export interface ServiceBrokerOptions {
  provisioners: Provisioner[];
  store: BrokerStore;
  log: Logger;
  /**
   * With accepts_incomplete=true, an operation that finishes within this window is answered
   * synchronously (201/200); a longer one gets 202 and runs on. 0 makes every such request async.
   */
  syncWindowMs?: number;
}

type Params = Record<string, unknown>;

const badRequest = (description: string): Reply => ({ status: 400, body: { description } });
const concurrency = (description: string): Reply => ({
  status: 422,
  body: { error: BrokerErrorCodes.concurrencyError, description },
});
const unsupported = (description: string): Reply => ({ status: 422, body: { description } });
const asyncRequired: Reply = {
  status: 422,
  body: { error: BrokerErrorCodes.asyncRequired, description: "This service plan requires client support for asynchronous service operations." },
};
const gone: Reply = { status: 410, body: {} };

export class ServiceBroker {
  private readonly byServiceId = new Map<string, Provisioner>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly running = new Set<Promise<unknown>>();
  private readonly syncWindowMs: number;
  readonly catalog: { services: CatalogService[] };
  /** Resolves once operations left "in progress" by a previous process are marked failed. */
  readonly recovered: Promise<void>;

  constructor(private readonly opts: ServiceBrokerOptions) {
    for (const p of opts.provisioners) {
      if (this.byServiceId.has(p.service.id)) throw new Error(`two provisioners declare service id ${p.service.id}`);
      this.byServiceId.set(p.service.id, p);
    }
    // GET of an instance or a binding is the framework's, so every service offers both unless it says not.
    this.catalog = {
      services: opts.provisioners.map((p) => ({
        ...p.service,
        instances_retrievable: p.service.instances_retrievable ?? true,
        bindings_retrievable: p.service.bindings_retrievable ?? p.service.bindable,
      })),
    };
    this.syncWindowMs = opts.syncWindowMs ?? 1000;
    this.recovered = this.failUnfinished().then(() => this.resumeProvisioners());
  }

  async provision(instanceId: string, body: unknown, acceptsIncomplete: boolean): Promise<Reply> {
    const req = this.parseProvision(body);
    if ("status" in req) return req;
    const { provisioner, plan, params, context, organizationGuid, spaceGuid } = req;
    const result = await this.locked<Reply | Started>(instanceId, async () => {
      const existing = await this.opts.store.getInstance(instanceId);
      if (existing) {
        // Identical means every attribute the platform sent (OSB 2.17 § Provisioning, 200 vs 409): ids,
        // parameters, organization, space and context. A record kept before the guids were has none.
        const differs = [
          existing.serviceId !== provisioner.service.id && "service_id",
          existing.planId !== plan.id && "plan_id",
          !sameJson(existing.params, params) && "parameters",
          existing.organizationGuid !== undefined && existing.organizationGuid !== organizationGuid && "organization_guid",
          existing.spaceGuid !== undefined && existing.spaceGuid !== spaceGuid && "space_guid",
          !sameJson(existing.context, context) && "context",
        ].filter((d): d is string => d !== false);
        if (differs.length) return { status: 409, body: { description: `service instance ${instanceId} already exists with a different ${differs.join(", ")}` } };
        if (existing.operation?.state === "in progress") {
          if (existing.operation.kind !== "provision") return concurrency(`an ${existing.operation.kind} of ${instanceId} is in progress`);
          return acceptsIncomplete ? { status: 202, body: { operation: existing.operation.id } } : concurrency(`provisioning of ${instanceId} is in progress`);
        }
        if (existing.ready) return { status: 200, body: dashboard(existing.dashboardUrl) };
        // A failed provision that was not cleaned up: provisioners are idempotent, so try again.
      }
      if (provisioner.asyncOnly && !acceptsIncomplete) return asyncRequired;
      const record: InstanceRecord = {
        id: instanceId,
        serviceId: provisioner.service.id,
        planId: plan.id,
        params,
        context,
        organizationGuid,
        spaceGuid,
        ready: false,
        operation: newOperation("provision"),
      };
      await this.opts.store.putInstance(record);
      const work = async () => {
        const result = await provisioner.provision({ instanceId, plan, params, context });
        record.dashboardUrl = result?.dashboard_url;
        record.ready = true;
      };
      return this.runInstance(record, work, 201, () => dashboard(record.dashboardUrl));
    });
    return this.answer(result, acceptsIncomplete);
  }

  async update(instanceId: string, body: unknown, acceptsIncomplete: boolean): Promise<Reply> {
    const serviceId = requiredString(body, "service_id");
    if ("missing" in serviceId) return badRequest(serviceId.missing);
    const provisioner = this.byServiceId.get(serviceId.value);
    if (!provisioner) return badRequest(`unknown service_id ${serviceId.value}`);
    // plan_id may be left out (the plan stays), but when sent it is an id (OSB 2.17 § Updating)
    const sentPlan = (body as Params).plan_id === undefined ? undefined : requiredString(body, "plan_id");
    if (sentPlan && "missing" in sentPlan) return badRequest(sentPlan.missing);
    const sentParams = optionalObject(body, "parameters");
    if (sentParams === false) return badRequest("parameters must be an object");
    const sentContext = optionalObject(body, "context");
    if (sentContext === false) return badRequest("context must be an object");
    const result = await this.locked<Reply | Started>(instanceId, async () => {
      const record = await this.opts.store.getInstance(instanceId);
      if (!record || !record.ready) return { status: 404, body: { description: `service instance ${instanceId} does not exist` } };
      if (record.serviceId !== provisioner.service.id) return badRequest(wrongId("service_id", serviceId.value, `the service of instance ${instanceId}`, record.serviceId, "nothing was changed"));
      const planId = sentPlan?.value ?? record.pendingUpdate?.planId ?? record.planId;
      const plan = provisioner.service.plans.find((p) => p.id === planId);
      if (!plan) return badRequest(`unknown plan_id ${planId} for service ${provisioner.service.name}`);
      if (record.operation?.state === "in progress") {
        // The spec: the same update again while it runs is answered 202 with its operation, not refused.
        const pending = record.pendingUpdate;
        const same = record.operation.kind === "update" && pending?.planId === plan.id && sameJson(sentParams ?? record.params, pending.params);
        if (same && acceptsIncomplete) return { status: 202, body: { operation: record.operation.id } };
        return concurrency(`an ${record.operation.kind} of ${instanceId} is in progress`);
      }
      const previousPlan = this.plan(provisioner, record.planId);
      const params = sentParams ?? record.params;
      if (plan.id === record.planId && sameJson(params, record.params)) return { status: 200, body: {} };
      const updatable = plan.plan_updateable ?? provisioner.service.plan_updateable ?? false;
      // 422: the spec's answer for a change the service does not support (400 is for malformed requests).
      if (!provisioner.update) return unsupported(`service ${provisioner.service.name} cannot change plans or parameters of an existing instance`);
      if (plan.id !== record.planId && !updatable) return unsupported(`service ${provisioner.service.name} cannot change the plan of an existing instance to ${plan.name}`);
      if (provisioner.asyncOnly && !acceptsIncomplete) return asyncRequired;
      record.operation = newOperation("update");
      record.pendingUpdate = { planId: plan.id, params };
      await this.opts.store.putInstance(record);
      const update = provisioner.update.bind(provisioner);
      const context = sentContext ?? record.context;
      const work = async () => {
        try {
          await update({ instanceId, plan, params, context, previousPlan });
          record.planId = plan.id;
          record.params = params;
          record.context = context;
        } finally {
          record.pendingUpdate = undefined;
        }
      };
      return this.runInstance(record, work, 200, () => ({}));
    });
    return this.answer(result, acceptsIncomplete);
  }

  async deprovision(instanceId: string, query: Params, acceptsIncomplete: boolean): Promise<Reply> {
    const ids = requiredIds(query);
    if ("status" in ids) return ids;
    const result = await this.locked<Reply | Started>(instanceId, async () => {
      const record = await this.opts.store.getInstance(instanceId);
      if (!record) return gone;
      // Ids that are not the instance's are a platform bug: deleting on them could drop the wrong database.
      const what = `instance ${instanceId}`;
      if (ids.serviceId !== record.serviceId) return badRequest(wrongId("service_id", ids.serviceId, `the service of ${what}`, record.serviceId, "nothing was deleted"));
      if (ids.planId !== record.planId) return badRequest(wrongId("plan_id", ids.planId, `the plan of ${what}`, record.planId, "nothing was deleted"));
      if (record.operation?.state === "in progress") {
        if (record.operation.kind !== "deprovision") return concurrency(`an ${record.operation.kind} of ${instanceId} is in progress`);
        return acceptsIncomplete ? { status: 202, body: { operation: record.operation.id } } : concurrency(`deprovisioning of ${instanceId} is in progress`);
      }
      const provisioner = this.byServiceId.get(record.serviceId);
      if (!provisioner) return { status: 500, body: { description: `no provisioner for service ${record.serviceId} any more` } };
      if (provisioner.asyncOnly && !acceptsIncomplete) return asyncRequired;
      record.operation = newOperation("deprovision");
      await this.opts.store.putInstance(record);
      const plan = this.plan(provisioner, record.planId);
      const work = async () => {
        // Bindings the platform never deleted would keep users alive inside the dropped database.
        for (const b of await this.opts.store.bindingsOf(instanceId)) {
          await provisioner.unbind({ instanceId, bindingId: b.id, plan });
          await this.opts.store.deleteBinding(b.id);
        }
        await provisioner.deprovision({ instanceId, plan });
      };
      return this.runInstance(record, work, 200, () => ({}), true);
    });
    return this.answer(result, acceptsIncomplete);
  }

  async instanceLastOperation(instanceId: string, query: Params): Promise<Reply> {
    const record = await this.opts.store.getInstance(instanceId);
    if (!record) return gone;
    return lastOperation(record.operation, query);
  }

  /**
   * GET of an instance (OSB 2.17 § Fetching a Service Instance): 404 while it does not exist or its
   * provisioning runs (or failed), 422 ConcurrencyError while an update runs, else its ids, dashboard and
   * parameters.
   */
  async fetchInstance(instanceId: string, query: Params): Promise<Reply> {
    const hints = optionalIds(query);
    if ("status" in hints) return hints;
    const record = await this.opts.store.getInstance(instanceId);
    const running = record?.operation?.state === "in progress" ? record.operation.kind : undefined;
    if (!record) return { status: 404, body: { description: `service instance ${instanceId} does not exist` } };
    if (running === "provision") return { status: 404, body: { description: `service instance ${instanceId} is still being provisioned` } };
    if (!record.ready) return { status: 404, body: { description: `service instance ${instanceId} does not exist: its provisioning failed` } };
    if (running === "update") return concurrency(`service instance ${instanceId} is being updated; fetch it once the update has finished`);
    const what = `instance ${instanceId}`;
    if (hints.serviceId !== undefined && hints.serviceId !== record.serviceId) return badRequest(wrongId("service_id", hints.serviceId, `the service of ${what}`, record.serviceId));
    if (hints.planId !== undefined && hints.planId !== record.planId) return badRequest(wrongId("plan_id", hints.planId, `the plan of ${what}`, record.planId));
    return { status: 200, body: { service_id: record.serviceId, plan_id: record.planId, ...dashboard(record.dashboardUrl), parameters: record.params } };
  }

  async bind(instanceId: string, bindingId: string, body: unknown, acceptsIncomplete: boolean): Promise<Reply> {
    const req = this.parseServicePlan(body);
    if ("status" in req) return req;
    const { provisioner, plan, params } = req;
    if (!(plan.bindable ?? provisioner.service.bindable)) return badRequest(`plan ${plan.name} is not bindable`);
    const resource = objectField(body, "bind_resource");
    const appGuid = stringField(resource, "app_guid") ?? stringField(body, "app_guid");
    const result = await this.locked<Reply | Started>(`binding:${bindingId}`, async () => {
      const instance = await this.opts.store.getInstance(instanceId);
      if (!instance || (!instance.ready && instance.operation?.state !== "in progress")) {
        return { status: 404, body: { description: `service instance ${instanceId} does not exist` } };
      }
      if (instance.operation?.state === "in progress") return concurrency(`an ${instance.operation.kind} of ${instanceId} is in progress`);
      const what = `instance ${instanceId}`;
      if (instance.serviceId !== provisioner.service.id) return badRequest(wrongId("service_id", provisioner.service.id, `the service of ${what}`, instance.serviceId, "nothing was bound"));
      if (instance.planId !== plan.id) return badRequest(wrongId("plan_id", plan.id, `the plan of ${what}`, instance.planId, "nothing was bound"));
      const existing = await this.opts.store.getBinding(bindingId);
      if (existing) {
        // A binding is identical only for the same app too: another app must never get these credentials.
        // (its plan is the instance's, checked above: a binding made before a plan change is the same one)
        const same =
          existing.instanceId === instanceId &&
          existing.serviceId === provisioner.service.id &&
          existing.appGuid === appGuid &&
          sameJson(existing.params, params);
        if (!same) return { status: 409, body: { description: `service binding ${bindingId} already exists with different attributes` } };
        if (existing.operation?.state === "in progress") {
          if (existing.operation.kind !== "bind") return concurrency(`an ${existing.operation.kind} of ${bindingId} is in progress`);
          return acceptsIncomplete ? { status: 202, body: { operation: existing.operation.id } } : concurrency(`binding ${bindingId} is in progress`);
        }
        if (existing.ready) return { status: 200, body: bindingBody(existing.credentials) };
      }
      if (provisioner.asyncOnly && !acceptsIncomplete) return asyncRequired;
      const record: BindingRecord = {
        id: bindingId,
        instanceId,
        serviceId: provisioner.service.id,
        planId: plan.id,
        params,
        appGuid,
        ready: false,
        operation: newOperation("bind"),
      };
      await this.opts.store.putBinding(record);
      const work = async () => {
        const result = await provisioner.bind({ instanceId, bindingId, plan, params });
        record.credentials = result.credentials;
        record.ready = true;
      };
      return this.runBinding(record, work, 201, () => bindingBody(record.credentials));
    });
    return this.answer(result, acceptsIncomplete);
  }

  async unbind(instanceId: string, bindingId: string, query: Params, acceptsIncomplete: boolean): Promise<Reply> {
    const ids = requiredIds(query);
    if ("status" in ids) return ids;
    const result = await this.locked<Reply | Started>(`binding:${bindingId}`, async () => {
      const record = await this.opts.store.getBinding(bindingId);
      if (!record || record.instanceId !== instanceId) return gone;
      const what = `binding ${bindingId}`;
      if (ids.serviceId !== record.serviceId) return badRequest(wrongId("service_id", ids.serviceId, `the service of ${what}`, record.serviceId, "nothing was deleted"));
      const plans = await this.bindingPlans(record);
      if (!plans.includes(ids.planId)) return badRequest(wrongId("plan_id", ids.planId, `the plan of ${what}`, plans.join(" or "), "nothing was deleted"));
      if (record.operation?.state === "in progress") {
        if (record.operation.kind !== "unbind") return concurrency(`a ${record.operation.kind} of ${bindingId} is in progress`);
        return acceptsIncomplete ? { status: 202, body: { operation: record.operation.id } } : concurrency(`unbinding ${bindingId} is in progress`);
      }
      const provisioner = this.byServiceId.get(record.serviceId);
      if (!provisioner) return { status: 500, body: { description: `no provisioner for service ${record.serviceId} any more` } };
      if (provisioner.asyncOnly && !acceptsIncomplete) return asyncRequired;
      record.operation = newOperation("unbind");
      await this.opts.store.putBinding(record);
      const plan = this.plan(provisioner, record.planId);
      const work = () => provisioner.unbind({ instanceId, bindingId, plan });
      return this.runBinding(record, work, 200, () => ({}), true);
    });
    return this.answer(result, acceptsIncomplete);
  }

  /**
   * GET of a binding (OSB 2.17 § Fetching a Service Binding): how a platform reads credentials after an
   * asynchronous bind. 404 while it does not exist, or an operation on it runs, or its bind failed.
   */
  async fetchBinding(instanceId: string, bindingId: string, query: Params = {}): Promise<Reply> {
    const hints = optionalIds(query);
    if ("status" in hints) return hints;
    const record = await this.opts.store.getBinding(bindingId);
    if (!record || record.instanceId !== instanceId || !record.ready || record.operation?.state === "in progress") {
      return { status: 404, body: { description: `service binding ${bindingId} does not exist or is not ready` } };
    }
    const what = `binding ${bindingId}`;
    if (hints.serviceId !== undefined && hints.serviceId !== record.serviceId) return badRequest(wrongId("service_id", hints.serviceId, `the service of ${what}`, record.serviceId));
    const plans = hints.planId === undefined ? [] : await this.bindingPlans(record);
    if (hints.planId !== undefined && !plans.includes(hints.planId)) return badRequest(wrongId("plan_id", hints.planId, `the plan of ${what}`, plans.join(" or ")));
    return { status: 200, body: { ...bindingBody(record.credentials), parameters: record.params } };
  }

  async bindingLastOperation(instanceId: string, bindingId: string, query: Params): Promise<Reply> {
    const record = await this.opts.store.getBinding(bindingId);
    if (!record || record.instanceId !== instanceId) return gone;
    return lastOperation(record.operation, query);
  }

  /** Waits for background operations (tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  async close(): Promise<void> {
    await this.idle();
    await Promise.allSettled(this.opts.provisioners.map((p) => p.close?.()));
  }

  // --- the machinery shared by the operations ---

  private runInstance(record: InstanceRecord, work: () => Promise<void>, okStatus: number, okBody: () => Params, deleteOnSuccess = false): Started {
    const save = () => (deleteOnSuccess && record.operation?.state === "succeeded" ? this.opts.store.deleteInstance(record.id) : this.opts.store.putInstance(record));
    const drop = () => this.opts.store.deleteInstance(record.id);
    return this.start(record, work, save, record.operation?.kind === "provision" ? drop : undefined, okStatus, okBody);
  }

  private runBinding(record: BindingRecord, work: () => Promise<void>, okStatus: number, okBody: () => Params, deleteOnSuccess = false): Started {
    const save = () => (deleteOnSuccess && record.operation?.state === "succeeded" ? this.opts.store.deleteBinding(record.id) : this.opts.store.putBinding(record));
    const drop = () => this.opts.store.deleteBinding(record.id);
    return this.start(record, work, save, record.operation?.kind === "bind" ? drop : undefined, okStatus, okBody);
  }

  /**
   * Starts one operation in the background and records its outcome when it ends. A create refused by
   * the provisioner with a 4xx created nothing: answered synchronously, its record is dropped; answered
   * async, it stays "failed" so last_operation can say why (the platform's DELETE then finds nothing to do).
   */
  private start(
    target: { id: string; operation?: OperationRecord },
    work: () => Promise<void>,
    save: () => Promise<void>,
    dropOnRefusal: (() => Promise<void>) | undefined,
    okStatus: number,
    okBody: () => Params,
  ): Started {
    const op = target.operation!;
    const outcome = (async (): Promise<Reply> => {
      try {
        await work();
        op.state = "succeeded";
        op.description = undefined;
        await save();
        this.opts.log.info("operation succeeded", { kind: op.kind, id: target.id });
        return { status: okStatus, body: okBody() };
      } catch (err) {
        const status = err instanceof ServiceError ? err.status : 500;
        op.state = "failed";
        op.description = err instanceof Error ? err.message : String(err);
        await save();
        this.opts.log.warn("operation failed", { kind: op.kind, id: target.id, error: op.description });
        const body: Params = { description: op.description };
        if (err instanceof ServiceError && err.code) body.error = err.code;
        return { status, body };
      }
    })();
    this.running.add(outcome);
    void outcome.finally(() => this.running.delete(outcome));
    return { started: outcome, operation: op.id, dropIfRefused: dropOnRefusal };
  }

  /**
   * Answers for a started operation, outside the resource's lock (so a concurrent request gets 422
   * ConcurrencyError at once instead of queueing): synchronously when the platform did not accept async
   * or the work finished within the sync window, otherwise 202 with the operation id.
   */
  private async answer(result: Reply | Started, acceptsIncomplete: boolean): Promise<Reply> {
    if (!("started" in result)) return result;
    const settled = async (reply: Reply) => {
      if (reply.status >= 400 && reply.status < 500 && result.dropIfRefused) await result.dropIfRefused();
      return reply;
    };
    if (!acceptsIncomplete) return settled(await result.started);
    const accepted: Reply = { status: 202, body: { operation: result.operation } };
    if (this.syncWindowMs <= 0) return accepted;
    let timer: ReturnType<typeof setTimeout> | undefined = undefined;
    const window = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.syncWindowMs);
    });
    const early = await Promise.race([result.started, window]);
    clearTimeout(timer);
    return early ? settled(early) : accepted;
  }

  /** Serialises the decision part of requests on one resource, so two identical PUTs cannot both create. */
  private async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return next;
  }

  private parseServicePlan(body: unknown): { provisioner: Provisioner; plan: CatalogPlan; params: Params } | Reply {
    if (typeof body !== "object" || body === null || Array.isArray(body)) return badRequest("the request body must be a JSON object");
    const serviceId = requiredString(body, "service_id");
    if ("missing" in serviceId) return badRequest(serviceId.missing);
    const planId = requiredString(body, "plan_id");
    if ("missing" in planId) return badRequest(planId.missing);
    const provisioner = this.byServiceId.get(serviceId.value);
    if (!provisioner) return badRequest(`unknown service_id ${serviceId.value}`);
    const plan = provisioner.service.plans.find((p) => p.id === planId.value);
    if (!plan) return badRequest(`unknown plan_id ${planId.value} for service ${provisioner.service.name}`);
    const params = optionalObject(body, "parameters");
    if (params === false) return badRequest("parameters must be an object");
    return { provisioner, plan, params: params ?? {} };
  }

  /**
   * A provision request's fields (OSB 2.17 § Provisioning): service_id, plan_id, and organization_guid and
   * space_guid, which the spec marks REQUIRED and "MUST be a non-empty string" (400 for missing mandatory
   * data); `context` when sent is an object, and its guids (Cloud Foundry's profile repeats them) agree.
   */
  private parseProvision(body: unknown) {
    const req = this.parseServicePlan(body);
    if ("status" in req) return req;
    const org = requiredString(body, "organization_guid");
    if ("missing" in org) return badRequest(org.missing);
    const space = requiredString(body, "space_guid");
    if ("missing" in space) return badRequest(space.missing);
    const context = optionalObject(body, "context");
    if (context === false) return badRequest("context must be an object");
    for (const [key, value] of [["organization_guid", org.value], ["space_guid", space.value]] as const) {
      if (context?.[key] !== undefined && context[key] !== value) return badRequest(`context.${key} (${String(context[key])}) differs from ${key} (${value})`);
    }
    return { ...req, context: context ?? {}, organizationGuid: org.value, spaceGuid: space.value };
  }

  private plan(provisioner: Provisioner, planId: string): CatalogPlan {
    return provisioner.service.plans.find((p) => p.id === planId) ?? { id: planId, name: planId, description: "(no longer in the catalog)" };
  }

  /**
   * The plan ids a platform may name for a binding: the instance's plan now (a plan change moves its
   * bindings with it; Cloud Foundry sends the instance's plan), and the plan it was bound under.
   */
  private async bindingPlans(binding: BindingRecord): Promise<string[]> {
    const instancePlan = (await this.opts.store.getInstance(binding.instanceId))?.planId;
    return instancePlan === undefined || instancePlan === binding.planId ? [binding.planId] : [instancePlan, binding.planId];
  }

  /** Tells provisioners that enforce plan limits themselves which instances exist, on which plan. */
  private async resumeProvisioners(): Promise<void> {
    const resumable = this.opts.provisioners.filter((p) => p.resume);
    if (resumable.length === 0) return;
    const instances = (await this.opts.store.instances()).filter((r) => r.ready);
    for (const p of resumable) {
      const mine = instances.filter((r) => r.serviceId === p.service.id).map((r) => ({ instanceId: r.id, plan: this.plan(p, r.planId) }));
      try {
        await p.resume!(mine);
      } catch (err) {
        this.opts.log.error("a provisioner could not resume its instances", { service: p.service.name, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  private async failUnfinished(): Promise<void> {
    const { instances, bindings } = await this.opts.store.unfinished();
    const why = "the broker restarted while this operation ran; retry it, or delete the resource";
    for (const r of instances) {
      r.operation = { ...r.operation!, state: "failed", description: why };
      r.pendingUpdate = undefined;
      await this.opts.store.putInstance(r);
    }
    for (const r of bindings) {
      r.operation = { ...r.operation!, state: "failed", description: why };
      await this.opts.store.putBinding(r);
    }
  }
}

function lastOperation(op: OperationRecord | undefined, query: Params): Reply {
  if (!op) return { status: 200, body: { state: "succeeded" } };
  if (typeof query.operation === "string" && query.operation !== op.id) {
    return badRequest(`operation ${query.operation} is not the last operation of this resource`);
  }
  const body: Params = { state: op.state };
  if (op.description) body.description = op.description;
  return { status: 200, body };
}

/** service_id and plan_id of a DELETE (OSB 2.17 § Deprovisioning, § Unbinding): both REQUIRED, non-empty. */
function requiredIds(query: Params): { serviceId: string; planId: string } | Reply {
  const serviceId = requiredString(query, "service_id", "query");
  if ("missing" in serviceId) return badRequest(`${serviceId.missing}; nothing was deleted`);
  const planId = requiredString(query, "plan_id", "query");
  if ("missing" in planId) return badRequest(`${planId.missing}; nothing was deleted`);
  return { serviceId: serviceId.value, planId: planId.value };
}

/** service_id and plan_id of a GET, which the platform MAY send: when sent, non-empty. */
function optionalIds(query: Params): { serviceId?: string; planId?: string } | Reply {
  const out: { serviceId?: string; planId?: string } = {};
  for (const [key, field] of [["service_id", "serviceId"], ["plan_id", "planId"]] as const) {
    if (query[key] === undefined) continue;
    const v = requiredString(query, key, "query");
    if ("missing" in v) return badRequest(v.missing.replace("it is required, a", "when sent it must be a"));
    out[field] = v.value;
  }
  return out;
}

function wrongId(field: string, given: string, whose: string, actual: string, outcome?: string): string {
  return `${field} ${given} is not ${whose} (that is ${actual})${outcome ? `; ${outcome}` : ""}`;
}

function newOperation(kind: OperationKind): OperationRecord {
  return { id: `${kind}-${randomUUID()}`, kind, state: "in progress" };
}

/**
 * A binding's answer: its credentials, and the network endpoints they reach (OSB 2.17 § Types of Binding:
 * brokers SHOULD give the hosts and ports, so a platform can open its firewall for them).
 */
function bindingBody(credentials: Credentials | undefined): Params {
  if (!credentials || typeof credentials.hostname !== "string" || typeof credentials.port !== "number") return { credentials };
  return { credentials, endpoints: [{ host: credentials.hostname, ports: [String(credentials.port)], protocol: "tcp" }] };
}

function dashboard(url: string | undefined): Params {
  return url ? { dashboard_url: url } : {};
}
