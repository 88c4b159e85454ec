// The platform side of the Open Service Broker API v2.17: what the controller calls to use any broker.
// Every call has a timeout; async operations are polled; and a create that may have left something behind
// (timeout, 5xx, malformed answer, polling that never ends, a failed async create) is followed by a delete
// — the spec's orphan mitigation — whose outcome the thrown error reports in `orphan`.

import type { Logger } from "../../bus/log.ts";
import { BrokerClientError, BrokerRequestError, BrokerTimeoutError, OperationFailedError } from "./errors.ts";
import type { CatalogService, Credentials } from "./types.ts";

export interface BrokerClientOptions {
  /** The broker's base URL (without /v2). */
  url: string;
  username: string;
  password: string;
  /** Per HTTP request (default 60 s, as Cloud Foundry). */
  requestTimeoutMs?: number;
  /** How long an async operation may run before the platform gives up (default 60 min). */
  operationTimeoutMs?: number;
  /** First poll interval; doubles up to `maxPollIntervalMs` unless the broker sends Retry-After. */
  pollIntervalMs?: number;
  maxPollIntervalMs?: number;
  /** Attempts for the orphan-mitigation delete (default 3); "busy" answers do not count. */
  mitigationAttempts?: number;
  /** How long mitigation waits for a broker still busy with the failed create (default 10 min). */
  mitigationTimeoutMs?: number;
  /** X-Broker-API-Originating-Identity value, e.g. `skiff <base64 {"user_id": …}>`. */
  originatingIdentity?: string;
  /** Replaces the network: tests pass `(req) => app.handle(req)`. */
  fetch?: (request: Request) => Promise<Response>;
  log?: Logger;
}

export interface InstanceSpec {
  instanceId: string;
  serviceId: string;
  planId: string;
  params?: Record<string, unknown>;
  context?: Record<string, unknown>;
}

/** A provision names where the instance lives: OSB 2.17 § Provisioning makes both guids REQUIRED. */
export interface ProvisionSpec extends InstanceSpec {
  organizationGuid: string;
  spaceGuid: string;
}

export interface BindingSpec {
  instanceId: string;
  bindingId: string;
  serviceId: string;
  planId: string;
  appGuid?: string;
  params?: Record<string, unknown>;
  context?: Record<string, unknown>;
}

type Json = Record<string, any>;

export class BrokerClient {
  private readonly base: string;
  private readonly auth: string;
  private readonly requestTimeoutMs: number;
  private readonly operationTimeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly maxPollIntervalMs: number;
  private readonly send: (request: Request) => Promise<Response>;

  constructor(private readonly opts: BrokerClientOptions) {
    this.base = opts.url.replace(/\/+$/, "");
    this.auth = `Basic ${btoa(`${opts.username}:${opts.password}`)}`;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.operationTimeoutMs = opts.operationTimeoutMs ?? 60 * 60_000;
    this.pollIntervalMs = opts.pollIntervalMs ?? 2000;
    this.maxPollIntervalMs = opts.maxPollIntervalMs ?? 30_000;
    this.send = opts.fetch ?? ((req) => fetch(req));
  }

  async catalog(): Promise<{ services: CatalogService[] }> {
    const res = await this.request("GET", "/v2/catalog");
    if (res.status !== 200 || !Array.isArray(res.body.services)) throw failure("catalog", res);
    return res.body as { services: CatalogService[] };
  }

  /** Provisions and waits for it to finish; on an uncertain failure, deprovisions (orphan mitigation). */
  async provision(spec: ProvisionSpec): Promise<{ dashboard_url?: string }> {
    const path = `/v2/service_instances/${encodeURIComponent(spec.instanceId)}`;
    const where = { organization_guid: spec.organizationGuid, space_guid: spec.spaceGuid };
    // The guids go both top level and in context, as the spec asks while it moves them into context.
    const body = { service_id: spec.serviceId, plan_id: spec.planId, ...where, parameters: spec.params ?? {}, context: spec.context ?? { platform: "skiff", ...where } };
    const mitigate = () => this.deprovision(spec);
    return this.create(`provision ${spec.instanceId}`, mitigate, async () => {
      const res = await this.request("PUT", `${path}?accepts_incomplete=true`, body);
      if (res.status === 200 || res.status === 201) return { dashboard_url: res.body.dashboard_url };
      if (res.status === 202) {
        await this.poll(`${path}/last_operation`, spec, res.body.operation, false);
        return { dashboard_url: res.body.dashboard_url };
      }
      throw failure(`provision ${spec.instanceId}`, res);
    });
  }

  async update(spec: InstanceSpec & { previousPlanId?: string }): Promise<void> {
    const path = `/v2/service_instances/${encodeURIComponent(spec.instanceId)}`;
    const body: Json = { service_id: spec.serviceId, plan_id: spec.planId, parameters: spec.params, context: spec.context };
    if (spec.previousPlanId) body.previous_values = { plan_id: spec.previousPlanId };
    const res = await this.request("PATCH", `${path}?accepts_incomplete=true`, body);
    if (res.status === 200) return;
    if (res.status === 202) return this.poll(`${path}/last_operation`, spec, res.body.operation, false);
    throw failure(`update ${spec.instanceId}`, res);
  }

  /** GET of an instance (brokers whose catalog says `instances_retrievable`): its plan and parameters. */
  async fetchInstance(spec: { instanceId: string; serviceId?: string; planId?: string }): Promise<{ service_id?: string; plan_id?: string; dashboard_url?: string; parameters?: Record<string, unknown> }> {
    const query = spec.serviceId && spec.planId ? `?${ids({ serviceId: spec.serviceId, planId: spec.planId })}` : "";
    const res = await this.request("GET", `/v2/service_instances/${encodeURIComponent(spec.instanceId)}${query}`);
    if (res.status !== 200) throw failure(`fetch instance ${spec.instanceId}`, res);
    return res.body;
  }

  /** Deprovisions and waits; a broker that no longer knows the instance (410) counts as done. */
  async deprovision(spec: InstanceSpec): Promise<void> {
    const path = `/v2/service_instances/${encodeURIComponent(spec.instanceId)}`;
    const res = await this.request("DELETE", `${path}?accepts_incomplete=true&${ids(spec)}`);
    if (res.status === 200 || res.status === 410) return;
    if (res.status === 202) return this.poll(`${path}/last_operation`, spec, res.body.operation, true);
    throw failure(`deprovision ${spec.instanceId}`, res);
  }

  /** Binds and returns the credentials; on an uncertain failure, unbinds (orphan mitigation). */
  async bind(spec: BindingSpec): Promise<{ credentials: Credentials }> {
    const path = `/v2/service_instances/${encodeURIComponent(spec.instanceId)}/service_bindings/${encodeURIComponent(spec.bindingId)}`;
    const body: Json = { service_id: spec.serviceId, plan_id: spec.planId, parameters: spec.params ?? {}, context: spec.context ?? { platform: "skiff" } };
    if (spec.appGuid) body.bind_resource = { app_guid: spec.appGuid };
    const mitigate = () => this.unbind(spec);
    return this.create(`bind ${spec.bindingId}`, mitigate, async () => {
      let res = await this.request("PUT", `${path}?accepts_incomplete=true`, body);
      if (res.status === 202) {
        await this.poll(`${path}/last_operation`, spec, res.body.operation, false);
        res = await this.request("GET", path);
        if (res.status !== 200) throw failure(`fetch binding ${spec.bindingId}`, res);
      } else if (res.status !== 200 && res.status !== 201) {
        throw failure(`bind ${spec.bindingId}`, res);
      }
      if (!isCredentials(res.body.credentials)) throw new BrokerRequestError(res.status, res.body, `bind ${spec.bindingId}: the broker's answer has no credentials`);
      return { credentials: res.body.credentials };
    });
  }

  async unbind(spec: BindingSpec): Promise<void> {
    const path = `/v2/service_instances/${encodeURIComponent(spec.instanceId)}/service_bindings/${encodeURIComponent(spec.bindingId)}`;
    const res = await this.request("DELETE", `${path}?accepts_incomplete=true&${ids(spec)}`);
    if (res.status === 200 || res.status === 410) return;
    if (res.status === 202) return this.poll(`${path}/last_operation`, spec, res.body.operation, true);
    throw failure(`unbind ${spec.bindingId}`, res);
  }

  /**
   * Runs a create; when it fails in a way that may have left something on the broker, runs the
   * matching delete (a few attempts). 4xx refusals (400, 409, 422) created nothing and are not mitigated.
   */
  private async create<T>(what: string, mitigate: () => Promise<void>, attempt: () => Promise<T>): Promise<T> {
    try {
      return await attempt();
    } catch (err) {
      const error = err instanceof BrokerClientError ? err : new BrokerRequestError(0, {}, `${what}: ${err instanceof Error ? err.message : String(err)}`);
      if (error instanceof BrokerRequestError && error.status >= 400 && error.status < 500 && error.status !== 408) throw error;
      error.orphan = "left";
      // A broker still busy with the create answers 422 ConcurrencyError: wait for it (within the
      // operation timeout) without spending an attempt; other failures spend one.
      const attempts = this.opts.mitigationAttempts ?? 3;
      const deadline = Date.now() + (this.opts.mitigationTimeoutMs ?? 10 * 60_000);
      let interval = this.pollIntervalMs;
      for (let failures = 0; failures < attempts && Date.now() < deadline; ) {
        try {
          await mitigate();
          error.orphan = "cleaned";
          break;
        } catch (cleanupError) {
          const busy = cleanupError instanceof BrokerRequestError && cleanupError.status === 422 && cleanupError.body.error === "ConcurrencyError";
          if (!busy) failures++;
          this.opts.log?.warn("orphan mitigation did not finish", { what, busy, error: cleanupError instanceof Error ? cleanupError.message : String(cleanupError) });
          await Bun.sleep(interval);
          interval = Math.min(interval * 2, this.maxPollIntervalMs);
        }
      }
      this.opts.log?.warn("broker create failed", { what, error: error.message, orphan: error.orphan });
      throw error;
    }
  }

  /** Polls last_operation until succeeded (or 410 for a delete); throws on failed or on timeout. */
  private async poll(path: string, spec: { serviceId: string; planId: string }, operation: unknown, isDelete: boolean): Promise<void> {
    const deadline = Date.now() + this.operationTimeoutMs;
    const op = typeof operation === "string" ? `&operation=${encodeURIComponent(operation)}` : "";
    let interval = this.pollIntervalMs;
    for (;;) {
      const res = await this.request("GET", `${path}?${ids(spec)}${op}`);
      if (res.status === 410 && isDelete) return;
      if (res.status === 200) {
        if (res.body.state === "succeeded") return;
        if (res.body.state === "failed") throw new OperationFailedError(`${path}: ${res.body.description ?? "the operation failed"}`);
      } else if (res.status !== 410 || isDelete) {
        throw failure(`poll ${path}`, res);
      }
      const retryAfter = Number(res.headers.get("retry-after"));
      const wait = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : interval;
      if (Date.now() + wait > deadline) throw new BrokerTimeoutError(`${path}: the operation did not finish within ${this.operationTimeoutMs} ms`);
      await Bun.sleep(wait);
      interval = Math.min(interval * 2, this.maxPollIntervalMs);
    }
  }

  private async request(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json; headers: Headers }> {
    const headers: Record<string, string> = {
      authorization: this.auth,
      "x-broker-api-version": "2.17",
      "x-broker-api-request-identity": crypto.randomUUID(),
      accept: "application/json",
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.opts.originatingIdentity) headers["x-broker-api-originating-identity"] = this.opts.originatingIdentity;
    const controller = new AbortController();
    const request = new Request(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: controller.signal });
    let timer: ReturnType<typeof setTimeout> | undefined = undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new BrokerTimeoutError(`${method} ${path}: no answer from the broker within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
    });
    try {
      const res = await Promise.race([this.send(request), timeout]);
      const text = await Promise.race([res.text(), timeout]);
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : {};
      } catch {
        parsed = undefined;
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        // A success with a body we cannot read is as uncertain as a 500: the caller mitigates.
        throw new BrokerRequestError(res.status >= 200 && res.status < 300 ? 502 : res.status, { description: text.slice(0, 200) }, `${method} ${path}: the broker answered ${res.status} with a body that is not a JSON object`);
      }
      return { status: res.status, body: parsed as Json, headers: res.headers };
    } catch (err) {
      if (err instanceof BrokerClientError) throw err;
      throw new BrokerRequestError(0, {}, `${method} ${path}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

function ids(spec: { serviceId: string; planId: string }): string {
  return `service_id=${encodeURIComponent(spec.serviceId)}&plan_id=${encodeURIComponent(spec.planId)}`;
}

function failure(what: string, res: { status: number; body: Json }): BrokerRequestError {
  const detail = res.body.description ?? res.body.error ?? "no description";
  return new BrokerRequestError(res.status, res.body, `${what}: the broker answered ${res.status}${res.body.error ? ` ${res.body.error}` : ""}: ${detail}`);
}

function isCredentials(value: unknown): value is Credentials {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
