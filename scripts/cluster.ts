// `npm start`: a one-machine skiff cluster on embedded defaults, serving examples/hello through the
// router. Stays in the foreground with every component's log prefixed by its name; Ctrl-C stops all.

import { startLocalCluster, repoRoot } from "./local-cluster.ts";
import type { LocalServiceName } from "../controller/broker/servers/index.ts";
import { join } from "node:path";

const started = Date.now();
const cluster = await startLocalCluster({
  dataDir: process.env.SKIFF_DATA_DIR ?? join(repoRoot, ".skiff"),
  ports: { nats: 4222, controller: 9022, router: 8080, routerStatus: 8081 },
  echo: true,
  services: chooseServices(process.env.SKIFF_SERVICES),
});

/** SKIFF_SERVICES: unset → PostgreSQL, MariaDB and Redis (quick to start); `all` adds RabbitMQ; `none`. */
function chooseServices(v: string | undefined): readonly LocalServiceName[] | boolean {
  if (v === "none" || v === "0") return false;
  if (v === "all") return true;
  if (v) return v.split(",") as LocalServiceName[];
  return ["postgres", "mysql", "redis"];
}

let stopping = false;
const shutdown = async (why: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\nskiff: ${why}; stopping every process of the cluster`);
  await cluster.stop();
  process.exit(0);
};
process.on("SIGINT", () => void shutdown("interrupted"));
process.on("SIGTERM", () => void shutdown("terminated"));
for (const p of cluster.processes)
  p.exited.then((code) => {
    if (!stopping) void shutdown(`${p.name} exited with ${code}`);
  });

const login = await cluster.cli(["login", "-a", cluster.controllerUrl, "-u", "admin", "-p", cluster.adminPassword]);
if (login.code !== 0) {
  console.error(login.output);
  await shutdown("login failed");
}
const push = await cluster.cli(["push", join(repoRoot, "examples/hello")], { echo: true });
if (push.code !== 0) await shutdown("push failed");

const host = `hello.${cluster.domain}`;
console.log(`
skiff: the cluster is up (${((Date.now() - started) / 1000).toFixed(1)} s) and serving examples/hello:

    http://${host}:${cluster.routerPort}/
    curl -H 'Host: ${host}' http://127.0.0.1:${cluster.routerPort}/

  controller API  ${cluster.controllerUrl}   (user admin, password in ${cluster.paths.adminPassword})
  skiff CLI       SKIFF_HOME=${cluster.paths.cliHome} cli/bin/skiff apps
  router status   http://127.0.0.1:${cluster.routerStatusPort}/health
  services        ${cluster.services ? "cli/bin/skiff marketplace   (then create-service, bind-service, restart)" : "off (SKIFF_SERVICES=none)"}

Ctrl-C stops everything.`);
