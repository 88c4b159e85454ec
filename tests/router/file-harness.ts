// The harness for a router test file that needs nothing else set up before its tests: started before
// them, stopped after them with every process they started and the raw backends they listed.

import { afterAll, beforeAll } from "bun:test";
import type { Server as NetServer } from "node:net";
import { startHarness, stopSuite, type Harness } from "./router-harness.ts";

/** Registers the file's beforeAll and afterAll; the harness returned is filled in once it has started. */
export function harnessForFile(servers: NetServer[] = []): Harness {
  const h = {} as Harness;
  let started: Harness | undefined;
  beforeAll(async () => {
    started = await startHarness();
    Object.assign(h, started);
  }, 60_000);
  afterAll(() => stopSuite(started, servers));
  return h;
}
