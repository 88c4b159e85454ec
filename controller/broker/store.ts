// Where the broker keeps its instances, bindings and their last operation. An interface, so the
// embedded SQLite store (sqlite-store.ts) can give way to PostgreSQL in a cluster.

import type { Credentials, OperationState } from "./types.ts";

export type OperationKind = "provision" | "update" | "deprovision" | "bind" | "unbind";

export interface OperationRecord {
  id: string;
  kind: OperationKind;
  state: OperationState;
  description?: string;
}

export interface InstanceRecord {
  id: string;
  serviceId: string;
  planId: string;
  params: Record<string, unknown>;
  context: Record<string, unknown>;
  /** The provision's organization_guid and space_guid (records from before they were kept have none). */
  organizationGuid?: string;
  spaceGuid?: string;
  dashboardUrl?: string;
  /** True once a provision succeeded; a failed provision leaves false (the platform deprovisions it). */
  ready: boolean;
  operation?: OperationRecord;
  /** What a running update changes to: an identical PATCH while it runs gets its 202 again. */
  pendingUpdate?: { planId: string; params: Record<string, unknown> };
}

export interface BindingRecord {
  id: string;
  instanceId: string;
  serviceId: string;
  planId: string;
  params: Record<string, unknown>;
  appGuid?: string;
  credentials?: Credentials;
  ready: boolean;
  operation?: OperationRecord;
}

export interface BrokerStore {
  getInstance(id: string): Promise<InstanceRecord | undefined>;
  /** Every instance (a provisioner that enforces plan limits itself is told them at start). */
  instances(): Promise<InstanceRecord[]>;
  putInstance(record: InstanceRecord): Promise<void>;
  deleteInstance(id: string): Promise<void>;
  getBinding(id: string): Promise<BindingRecord | undefined>;
  putBinding(record: BindingRecord): Promise<void>;
  deleteBinding(id: string): Promise<void>;
  bindingsOf(instanceId: string): Promise<BindingRecord[]>;
  /** Instances and bindings whose last operation is still "in progress" (used after a restart). */
  unfinished(): Promise<{ instances: InstanceRecord[]; bindings: BindingRecord[] }>;
  close(): Promise<void>;
}

/** A store in memory, for tests and throwaway brokers. Records are copied in and out. */
export class MemoryBrokerStore implements BrokerStore {
  private readonly byId = new Map<string, InstanceRecord>();
  private readonly bindings = new Map<string, BindingRecord>();

  async getInstance(id: string) {
    return copy(this.byId.get(id));
  }
  async instances() {
    return [...this.byId.values()].map((r) => copy(r)!);
  }
  async putInstance(record: InstanceRecord) {
    this.byId.set(record.id, copy(record)!);
  }
  async deleteInstance(id: string) {
    this.byId.delete(id);
  }
  async getBinding(id: string) {
    return copy(this.bindings.get(id));
  }
  async putBinding(record: BindingRecord) {
    this.bindings.set(record.id, copy(record)!);
  }
  async deleteBinding(id: string) {
    this.bindings.delete(id);
  }
  async bindingsOf(instanceId: string) {
    return [...this.bindings.values()].filter((b) => b.instanceId === instanceId).map((b) => copy(b)!);
  }
  async unfinished() {
    const open = (r: { operation?: OperationRecord }) => r.operation?.state === "in progress";
    return {
      instances: [...this.byId.values()].filter(open).map((r) => copy(r)!),
      bindings: [...this.bindings.values()].filter(open).map((r) => copy(r)!),
    };
  }
  async close() {}
}

function copy<T>(value: T | undefined): T | undefined {
  return value === undefined ? undefined : structuredClone(value);
}
