// The services gateway's public contracts: the catalog shapes of the Open Service Broker API v2.17 and
// the one interface a new service implements (Provisioner). Imports nothing of the rest.

/** A plan as the OSB catalog describes it. */
export interface CatalogPlan {
  id: string;
  name: string;
  description: string;
  free?: boolean;
  bindable?: boolean;
  plan_updateable?: boolean;
  metadata?: Record<string, unknown>;
}

/** A service offering with its plans, exactly as `GET /v2/catalog` lists it. */
export interface CatalogService {
  id: string;
  name: string;
  description: string;
  bindable: boolean;
  tags?: string[];
  requires?: string[];
  plan_updateable?: boolean;
  instances_retrievable?: boolean;
  bindings_retrievable?: boolean;
  metadata?: Record<string, unknown>;
  plans: CatalogPlan[];
}

/** Credentials in Cloud Foundry's shape; `uri` is what DATABASE_URL / REDIS_URL are built from. */
export interface Credentials {
  uri: string;
  hostname: string;
  port: number;
  name: string;
  username: string;
  password: string;
  jdbcUrl?: string;
  [extra: string]: unknown;
}

export interface ProvisionRequest {
  instanceId: string;
  plan: CatalogPlan;
  params: Record<string, unknown>;
  /** The platform's `context` object (organization/space guids, instance name), as sent. */
  context: Record<string, unknown>;
}

/** A plan change or new parameters for a live instance: `plan` is the one to move to. */
export interface UpdateRequest extends ProvisionRequest {
  previousPlan: CatalogPlan;
}

export interface InstanceRef {
  instanceId: string;
  plan: CatalogPlan;
}

export interface BindRequest extends InstanceRef {
  bindingId: string;
  params: Record<string, unknown>;
}

export interface BindingRef extends InstanceRef {
  bindingId: string;
}

export interface ProvisionResult {
  dashboard_url?: string;
}

export interface BindResult {
  credentials: Credentials;
}

/**
 * Adding a service to skiff is implementing this one class. Every method may take as long as it needs:
 * the broker answers 202 and runs it in the background when the platform accepts async operations.
 * Each method must be safe to call again after a failure (the platform retries and cleans up orphans),
 * so "already exists" / "already gone" are successes, not errors.
 */
export interface Provisioner {
  readonly service: CatalogService;
  /** True when an operation can take minutes: a request without accepts_incomplete=true gets 422 AsyncRequired. */
  readonly asyncOnly?: boolean;
  provision(req: ProvisionRequest): Promise<ProvisionResult | void>;
  /**
   * Optional plan or parameter change, applied to the live instance without losing its data; without it,
   * a change is refused with 422 (the spec's "not supported"). Offer plan changes with `plan_updateable`.
   */
  update?(req: UpdateRequest): Promise<void>;
  deprovision(ref: InstanceRef): Promise<void>;
  bind(req: BindRequest): Promise<BindResult>;
  unbind(ref: BindingRef): Promise<void>;
  /**
   * Optional: told once the broker has started (and after a restart) which instances it holds and on
   * which plan, for a provisioner that enforces a plan's limits itself rather than through the server
   * (Redis's client cap). Later changes arrive through provision, update and deprovision.
   */
  resume?(instances: InstanceRef[]): Promise<void>;
  /** Releases admin connections; called when the broker stops. */
  close?(): Promise<void>;
}

/** Operation states exactly as `last_operation` reports them. */
export const OperationStates = { inProgress: "in progress", succeeded: "succeeded", failed: "failed" } as const;
export type OperationState = (typeof OperationStates)[keyof typeof OperationStates];

/** The error codes the spec names in `{error, description}` bodies. */
export const BrokerErrorCodes = {
  asyncRequired: "AsyncRequired",
  concurrencyError: "ConcurrencyError",
  requiresApp: "RequiresApp",
  maintenanceInfoConflict: "MaintenanceInfoConflict",
} as const;
