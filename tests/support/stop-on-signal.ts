// Preloaded into every test run (bunfig.toml): a test run stopped from outside (Ctrl-C, `kill`, a CI
// job's cancel, a hangup, or npm gone) stops what its tests started, clusters in their own order, and
// waits for all of it before it exits. Without it, `bun test` dies at once on SIGTERM and leaves every
// cluster, nats-server and namespace its tests had running (they run in process groups of their own).
// It imports nothing else of skiff: what to stop is registered by whatever started it.

import { onStopRequest, stopsToRunBeforeExit } from "../../scripts/stop-request.ts";

onStopRequest((request) => {
  console.error(`\ntests: ${request.why}; stopping every process the tests started`);
  void Promise.allSettled([...stopsToRunBeforeExit].map((stop) => stop())).finally(() => process.exit(request.exitCode));
});
