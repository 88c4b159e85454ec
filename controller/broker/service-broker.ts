// The OSB v2.17 semantics without HTTP: idempotency, conflicts, async operations and their last_operation
// state, for any set of Provisioners. broker.ts maps HTTP requests onto these methods; each returns the
// status and body the spec prescribes.

import { randomUUID } from "node:crypto";
import type { Logger } from "../../bus/log.ts";
import { ServiceError } from "./errors.ts";
import { objectField, sameJson, stringField } from "./request-fields.ts";
import type { BindingRecord, BrokerStore, InstanceRecord, OperationKind, OperationRecord } from "./store.ts";
import { BrokerErrorCodes, type CatalogPlan, type CatalogService, type Provisioner } from "./types.ts";

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
    this.catalog = { services: opts.provisioners.map((p) => p.service) };
    this.syncWindowMs = opts.syncWindowMs ?? 1000;
    this.recovered = this.failUnfinished();
  }

  async provision(instanceId: string, body: unknown, acceptsIncomplete: boolean): Promise<Reply> {
    const req = this.parseServicePlan(body);
    if ("status" in req) return req;
    const { provisioner, plan, params } = req;
    const context = objectField(body, "context") ?? {};
    const result = await this.locked<Reply | Started>(instanceId, async () => {
      const existing = await this.opts.store.getInstance(instanceId);
      if (existing) {
        const same = existing.serviceId === provisioner.service.id && existing.planId === plan.id && sameJson(existing.params, params);
        if (!same) return { status: 409, body: { description: `service instance ${instanceId} already exists with different attributes` } };
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
    const serviceId = stringField(body, "service_id");
    if (!serviceId) return badRequest("service_id is required");
    const provisioner = this.byServiceId.get(serviceId);
    if (!provisioner) return badRequest(`unknown service_id ${serviceId}`);
    const result = await this.locked<Reply | Started>(instanceId, async () => {
      const record = await this.opts.store.getInstance(instanceId);
      if (!record || !record.ready) return { status: 404, body: { description: `service instance ${instanceId} does not exist` } };
      const planId = stringField(body, "plan_id") ?? record.pendingUpdate?.planId ?? record.planId;
      const plan = provisioner.service.plans.find((p) => p.id === planId);
      if (!plan) return badRequest(`unknown plan_id ${planId} for service ${provisioner.service.name}`);
      if (record.operation?.state === "in progress") {
        // The spec: the same update again while it runs is answered 202 with its operation, not refused.
        const pending = record.pendingUpdate;
        const same = record.operation.kind === "update" && pending?.planId === plan.id && sameJson(objectField(body, "parameters") ?? record.params, pending.params);
        if (same && acceptsIncomplete) return { status: 202, body: { operation: record.operation.id } };
        return concurrency(`an ${record.operation.kind} of ${instanceId} is in progress`);
      }
      const previousPlan = this.plan(provisioner, record.planId);
      const params = objectField(body, "parameters") ?? record.params;
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
      const work = async () => {
        try {
          await update({ instanceId, plan, params, context: record.context, previousPlan });
          record.planId = plan.id;
          record.params = params;
        } finally {
          record.pendingUpdate = undefined;
        }
      };
      return this.runInstance(record, work, 200, () => ({}));
    });
    return this.answer(result, acceptsIncomplete);
  }

  async deprovision(instanceId: string, query: Params, acceptsIncomplete: boolean): Promise<Reply> {
    if (typeof query.service_id !== "string" || typeof query.plan_id !== "string") return badRequest("service_id and plan_id are required");
    const result = await this.locked<Reply | Started>(instanceId, async () => {
      const record = await this.opts.store.getInstance(instanceId);
      if (!record) return gone;
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
      const existing = await this.opts.store.getBinding(bindingId);
      if (existing) {
        // A binding is identical only for the same app too: another app must never get these credentials.
        const same =
          existing.instanceId === instanceId &&
          existing.serviceId === provisioner.service.id &&
          existing.planId === plan.id &&
          existing.appGuid === appGuid &&
          sameJson(existing.params, params);
        if (!same) return { status: 409, body: { description: `service binding ${bindingId} already exists with different attributes` } };
        if (existing.operation?.state === "in progress") {
          if (existing.operation.kind !== "bind") return concurrency(`an ${existing.operation.kind} of ${bindingId} is in progress`);
          return acceptsIncomplete ? { status: 202, body: { operation: existing.operation.id } } : concurrency(`binding ${bindingId} is in progress`);
        }
        if (existing.ready) return { status: 200, body: { credentials: existing.credentials } };
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
      return this.runBinding(record, work, 201, () => ({ credentials: record.credentials }));
    });
    return this.answer(result, acceptsIncomplete);
  }

  async unbind(instanceId: string, bindingId: string, query: Params, acceptsIncomplete: boolean): Promise<Reply> {
    if (typeof query.service_id !== "string" || typeof query.plan_id !== "string") return badRequest("service_id and plan_id are required");
    const result = await this.locked<Reply | Started>(`binding:${bindingId}`, async () => {
      const record = await this.opts.store.getBinding(bindingId);
      if (!record || record.instanceId !== instanceId) return gone;
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

  /** GET of a binding: how a platform fetches credentials after an asynchronous bind. */
  async fetchBinding(instanceId: string, bindingId: string): Promise<Reply> {
    const record = await this.opts.store.getBinding(bindingId);
    if (!record || record.instanceId !== instanceId || !record.ready || record.operation?.state === "in progress") {
      return { status: 404, body: { description: `service binding ${bindingId} does not exist or is not ready` } };
    }
    return { status: 200, body: { credentials: record.credentials, parameters: record.params } };
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
    const serviceId = stringField(body, "service_id");
    const planId = stringField(body, "plan_id");
    if (!serviceId || !planId) return badRequest("service_id and plan_id are required");
    const provisioner = this.byServiceId.get(serviceId);
    if (!provisioner) return badRequest(`unknown service_id ${serviceId}`);
    const plan = provisioner.service.plans.find((p) => p.id === planId);
    if (!plan) return badRequest(`unknown plan_id ${planId} for service ${provisioner.service.name}`);
    const raw = (body as Params).parameters;
    if (raw !== undefined && (typeof raw !== "object" || raw === null || Array.isArray(raw))) return badRequest("parameters must be an object");
    return { provisioner, plan, params: (raw as Params | undefined) ?? {} };
  }

  private plan(provisioner: Provisioner, planId: string): CatalogPlan {
    return provisioner.service.plans.find((p) => p.id === planId) ?? { id: planId, name: planId, description: "(no longer in the catalog)" };
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

function newOperation(kind: OperationKind): OperationRecord {
  return { id: `${kind}-${randomUUID()}`, kind, state: "in progress" };
}

function dashboard(url: string | undefined): Params {
  return url ? { dashboard_url: url } : {};
}
