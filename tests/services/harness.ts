// Shared by the services suites: a broker around one provisioner, reached through the platform's
// BrokerClient without a port (app.handle), and temp directories that are removed afterwards.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memoryLogger } from "../../bus/log.ts";
import { BrokerClient, type BrokerClientOptions } from "../../controller/broker/broker-client.ts";
import { createBroker } from "../../controller/broker/broker.ts";
import { MemoryBrokerStore } from "../../controller/broker/store.ts";
import type { Provisioner } from "../../controller/broker/types.ts";

export function brokerFor(provisioners: Provisioner[], clientOptions: Partial<BrokerClientOptions> = {}, syncWindowMs = 0) {
  const log = memoryLogger();
  const app = createBroker({ provisioners, credentials: { username: "broker", password: "secret" }, store: new MemoryBrokerStore(), syncWindowMs, log });
  const client = new BrokerClient({
    url: "http://broker",
    username: "broker",
    password: "secret",
    pollIntervalMs: 20,
    maxPollIntervalMs: 100,
    operationTimeoutMs: 30_000,
    fetch: (req) => app.handle(req),
    ...clientOptions,
  });
  const service = provisioners[0]!.service;
  // a provision names its organization and space (OSB 2.17 § Provisioning, REQUIRED)
  const ids = { serviceId: service.id, planId: service.plans[0]!.id, ...place };
  return { app, client, log, ids, broker: app.decorator.serviceBroker, close: () => app.decorator.serviceBroker.close() };
}

/** Where test instances live: OSB 2.17 makes a provision's organization_guid and space_guid REQUIRED. */
export const place = { organizationGuid: "org-tests", spaceGuid: "space-tests" } as const;

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `skiff-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Asserts a server binary is installed: set-up installs every one, so a missing one is a failure. */
export function installed(...commands: string[]): true {
  if (commands.some((c) => Bun.which(c) !== null)) return true;
  throw new Error(`none of ${commands.join(", ")} is installed: run \`node scripts/setup.mjs\` (it apt-get installs the servers)`);
}

/** Resolves to the error a promise rejects with, or undefined when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<Error | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err as Error;
  }
}
