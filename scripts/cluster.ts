// `npm start`: a one-machine skiff cluster on embedded defaults, serving examples/hello through the
// router. Stays in the foreground with every component's log prefixed by its name; Ctrl-C, SIGTERM,
// SIGHUP, or the end of the process that started it (npm, killed) stops all, in order, at any moment,
// start-up included. One per data folder: a second start while one runs is refused (cluster-lock.ts).
//
// Environment: SKIFF_DATA_DIR (default .skiff/), SKIFF_SERVICES (see chooseServices), and the preferred
// ports SKIFF_NATS_PORT (4222), SKIFF_CONTROLLER_PORT (9022), SKIFF_ROUTER_PORT (8080),
// SKIFF_ROUTER_STATUS_PORT (8081): a busy one, or 0, is replaced by a port the OS assigns.

import { ClusterStartAborted, clusterPaths, startLocalCluster, repoRoot, type Cluster } from "./local-cluster.ts";
import { acquireClusterLock, ClusterAlreadyRunning, type ClusterLock } from "./cluster-lock.ts";
import { onStopRequest } from "./stop-request.ts";
import type { LocalServiceName } from "../controller/broker/servers/index.ts";
import { restrictUmask, traverseOnlyDir } from "../bus/private-state.ts";
import { join, resolve } from "node:path";

/** SKIFF_SERVICES: unset → PostgreSQL, MariaDB and Redis (quick to start); `all` adds RabbitMQ; `none`. */
function chooseServices(v: string | undefined): readonly LocalServiceName[] | boolean {
  if (v === "none" || v === "0") return false;
  if (v === "all") return true;
  if (v) return v.split(",") as LocalServiceName[];
  return ["postgres", "mysql", "redis"];
}

function portFromEnv(name: string, def: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`skiff: ${name}=${raw} is not a port; use 1-65535, or 0 for one the OS assigns`);
    process.exit(2);
  }
  return n;
}

const started = Date.now();
const abort = new AbortController();
let starting: Promise<Cluster> | undefined;
let lock: ClusterLock | undefined;
let stopping = false;

// The handlers go in before anything starts: the components run in their own process groups (so a
// Ctrl-C reaches only this launcher, which stops them in order), and without a handler Bun's default
// SIGINT would end the launcher alone and orphan everything started so far. `npm start` execs this
// script (no shell between), so the SIGINT and SIGTERM npm forwards arrive here; a SIGHUP kills npm
// without forwarding, and so does a SIGKILL: then the parent watch sees npm gone.
const shutdown = async (why: string, code = 0) => {
  if (stopping) return;
  stopping = true;
  console.log(`\nskiff: ${why}; stopping every process of the cluster`);
  abort.abort();
  // Interrupted during start-up, startLocalCluster stops what it started and rejects; once up, stop it.
  const cluster = await starting?.catch(() => undefined);
  await cluster?.stop();
  lock?.release();
  process.exit(code);
};
onStopRequest((r) => void shutdown(r.why));

async function main() {
  // an empty SKIFF_DATA_DIR is unset: resolve("") would make the current folder (the repo) the state folder
  const dataDir = resolve(process.env.SKIFF_DATA_DIR || join(repoRoot, ".skiff"));
  const paths = clusterPaths(dataDir);
  restrictUmask();
  traverseOnlyDir(dataDir, "the cluster's data directory (SKIFF_DATA_DIR)");
  try {
    lock = acquireClusterLock(paths.lock);
  } catch (err) {
    if (!(err instanceof ClusterAlreadyRunning)) throw err;
    console.error(`skiff: not starting: ${err.message}`);
    process.exit(1);
  }
  starting = startLocalCluster({
    dataDir,
    ports: {
      nats: portFromEnv("SKIFF_NATS_PORT", 4222),
      controller: portFromEnv("SKIFF_CONTROLLER_PORT", 9022),
      router: portFromEnv("SKIFF_ROUTER_PORT", 8080),
      routerStatus: portFromEnv("SKIFF_ROUTER_STATUS_PORT", 8081),
    },
    echo: true,
    services: chooseServices(process.env.SKIFF_SERVICES),
    signal: abort.signal,
  });
  let cluster: Cluster;
  try {
    cluster = await starting;
  } catch (err) {
    if (err instanceof ClusterStartAborted) return; // shutdown() is finishing
    console.error(`skiff: the cluster did not start: ${err instanceof Error ? err.message : String(err)}`);
    return void (await shutdown("start-up failed", 1));
  }
  for (const p of cluster.processes)
    p.exited.then((code) => {
      if (!stopping) void shutdown(`${p.name} exited with ${code}`, 1);
    });

  const login = await cluster.cli(["login", "-a", cluster.controllerUrl, "-u", "admin", "-p", cluster.adminPassword]);
  if (stopping) return;
  if (login.code !== 0) {
    console.error(login.output);
    return void (await shutdown("login failed", 1));
  }
  const push = await cluster.cli(["push", join(repoRoot, "examples/hello")], { echo: true });
  if (stopping) return;
  if (push.code !== 0) return void (await shutdown("push failed", 1));

  const host = `hello.${cluster.domain}`;
  lock?.update("up", {
    router: `http://127.0.0.1:${cluster.routerPort}/`,
    "router status": `http://127.0.0.1:${cluster.routerStatusPort}/health`,
    controller: cluster.controllerUrl,
    nats: cluster.natsUrl,
  });
  console.log(`
skiff: the cluster is up (${((Date.now() - started) / 1000).toFixed(1)} s) and serving examples/hello:

    http://${host}:${cluster.routerPort}/
    curl -H 'Host: ${host}' http://127.0.0.1:${cluster.routerPort}/

  web console     ${cluster.controllerUrl}/   (the same user and password)
  controller API  ${cluster.controllerUrl}   (user admin, password in ${cluster.paths.adminPassword})
  skiff CLI       SKIFF_HOME=${cluster.paths.cliHome} cli/bin/skiff apps
  router status   http://127.0.0.1:${cluster.routerStatusPort}/health
  services        ${cluster.services ? "cli/bin/skiff marketplace   (then create-service, bind-service, restart)" : "off (SKIFF_SERVICES=none)"}

Ctrl-C stops everything.`);
}

await main();
