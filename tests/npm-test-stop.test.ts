// Issue 23, `npm test`: a test run stopped by a signal to npm's pid alone (SIGTERM and SIGINT, which npm
// forwards to `bun test`; SIGHUP, which kills npm and leaves bun test to notice) stops every process
// its tests started (a one-machine cluster in its own order, a nats-server, a plain process) before it
// exits. The run is `npm test -- tests/support/fixtures/holds-processes.ts`, a test that holds them.

import { afterEach, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { resolve } from "node:path";
import { startProcess, stopAllProcesses } from "./support/processes.ts";
import { stopThroughNpm } from "./support/npm-run.ts";
import { eventually } from "./support/ports.ts";
import { collectDescendants, notReaped, type Proc } from "./support/process-tree.ts";

const repo = resolve(import.meta.dir, "..");

afterEach(() => stopAllProcesses());

test.each(["SIGTERM", "SIGINT", "SIGHUP"] as const)("npm test stopped with %s to npm stops what its tests started (issue 23)", async (signal) => {
  const npm = startProcess("npm-test", "npm", ["test", "--", "./tests/support/fixtures/holds-processes.ts"], { cwd: repo });
  const dataDir = (await npm.waitForLine(/^holding /, 60_000)).slice("holding ".length).trim();
  const tree = collectDescendants([], npm.pid);
  for (const name of [/nats-server -a/, /^sleep 300/, /agent\/main\.ts/, /router\.mjs/]) expect(tree.some((p) => name.test(p.cmdline)), String(name)).toBe(true);
  const { runner, left } = await stopThroughNpm(npm, signal, tree, "bun test");
  expect(left).toEqual([]);
  expect(npm.output()).toContain("tests: ");
  expect(npm.output()).toContain("stopping every process the tests started");
  await eventually(() => (notReaped(runner) ? undefined : true), 10_000, "bun test reaped");
  rmSync(dataDir, { recursive: true, force: true });
}, 90_000);
