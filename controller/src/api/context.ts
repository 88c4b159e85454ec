// Everything an API handler may use, built once by main.ts and passed to each route group.

import type { Bus, Logger } from "../../../bus/index.ts";
import type { AgentRegistry } from "../agent-registry.ts";
import type { Blobstore, UrlSigner } from "../blobstore.ts";
import type { Store } from "../db/store.ts";
import type { ActualState } from "../health/actual-state.ts";
import type { InstanceLauncher } from "../launcher.ts";
import type { ServiceGateway } from "../services/service-gateway.ts";
import type { Stager } from "../stager.ts";

export interface Limits {
  /** the uploaded package (compressed) */
  packageBytes: number;
  /** the package once gunzipped (or unzipped): checked while streaming, never held whole */
  unpackedBytes: number;
  /** entries in a package */
  maxEntries: number;
  dropletBytes: number;
}

export const DEFAULT_LIMITS: Limits = { packageBytes: 1024 * 1024 * 1024, unpackedBytes: 2048 * 1024 * 1024, maxEntries: 100_000, dropletBytes: 2048 * 1024 * 1024 };

export interface ControllerContext {
  store: Store;
  bus: Bus;
  blobs: Blobstore;
  signer: UrlSigner;
  agents: AgentRegistry;
  actual: ActualState;
  launcher: InstanceLauncher;
  stager: Stager;
  /** service brokers, instances and bindings */
  services: ServiceGateway;
  log: Logger;
  domain: string;
  limits: Limits;
  /** asks the health manager to converge now (a no-op when it runs in its own process) */
  pokeHealth: () => void;
  /** how long the API waits for agents' replies (dea.find.droplet, dea.logs.recent) */
  findTimeoutMs: number;
  version: string;
}
