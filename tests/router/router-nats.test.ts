// The router and NATS going away: router.start again after a reconnect, and no pruning while the
// router cannot hear registrations.

import { afterAll, expect, test } from "bun:test";
import { connectBus, createLogger, Subjects, type Bus } from "../../bus/index.ts";
import { startNatsServer, type NatsServer } from "../support/nats-server.ts";
import { eventually } from "../support/ports.ts";
import { stopAllProcesses } from "../support/processes.ts";
import { buildRouter, startRouter, waitForStatus } from "./router-harness.ts";
import { rmSync } from "node:fs";
import { spawn, type ChildProcess } from "node:child_process";

let nats: NatsServer | undefined;
let bus: Bus | undefined;
let restarted: ChildProcess | undefined;
const bundle = buildRouter();

afterAll(async () => {
  await stopAllProcesses();
  await bus?.close().catch(() => {});
  await nats?.stop();
  rmSync(bundle, { force: true });
});

test("router.start after reconnect; pruning suspended while cut off from NATS", async () => {
  nats = await startNatsServer();
  const port = nats.port;
  const router = await startRouter(bundle, nats, { SKIFF_ROUTER_PRUNE_INTERVAL_SECONDS: "0.2" });
  bus = await connectBus({ servers: [nats.url], name: "nats-test" }, createLogger("test", "error"));
  const greeting = await bus.request(Subjects.routerGreet, "router.greet", {}, "router.start", { timeoutMs: 2000 });
  expect(greeting.pruneThresholdInSeconds).toBe(120);

  const backend = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("ok") });
  try {
    bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: backend.port!, uris: ["cutoff.skiff.localhost"], stale_threshold_in_seconds: 1 });
    await bus.flush();
    await waitForStatus(router.url, "cutoff.skiff.localhost", 200);

    await nats.stop();
    await Bun.sleep(2000); // twice the stale threshold, ten prune intervals
    expect((await fetch(router.url, { headers: { host: "cutoff.skiff.localhost" } })).status).toBe(200);

    // The same port again, so the router's client finds it (started by pid, stopped by pid). With -V
    // the server traces every PUB, which shows router.start arriving whoever else is connected yet.
    const started = Date.now();
    restarted = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port), "-V"], { stdio: ["ignore", "pipe", "pipe"] });
    let trace = "";
    restarted.stdout!.on("data", (d) => (trace += d));
    restarted.stderr!.on("data", (d) => (trace += d));
    await router.process.waitForLine(/reconnected to NATS/, 15_000);
    await eventually(() => (/PUB router\.start/.test(trace) ? true : undefined), 10_000, "router.start after the reconnect");
    expect(Date.now() - started).toBeLessThan(15_000);
    // Once back, the route is stale again only after its own threshold.
    await waitForStatus(router.url, "cutoff.skiff.localhost", 404, 5000);
  } finally {
    backend.stop(true);
    await router.process.stop();
    restarted?.kill("SIGTERM");
  }
}, 40_000);
