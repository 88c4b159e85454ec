// Push-to-first-200 (issue 7's target: ≤ 2 s; Cloud Foundry takes tens of seconds): the one-machine
// cluster of `npm start` (real nats-server, controller with SQLite, health manager, router, agent),
// then `skiff push examples/hello --name hello-N` with the real CLI, timed from the CLI's start to the
// first 200 through the router by Host header. Every round pushes a new app, so each one uploads its
// bits, stages a fresh droplet and starts it: nothing is cached but the agent's buildpack tools.
//
//   ./node_modules/.bin/bun bench/push/push-bench.ts [--quick] [--rounds 7]
//
// Results: bench/results/push.{json,md}; --quick writes push.quick.{json,md} (one round).

import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalCluster, repoRoot } from "../../scripts/local-cluster.ts";
import { writeReport } from "../lib/report.ts";
import { medianP99Chart } from "../lib/chart-data.ts";
import { pct, percentile, summarize, summaryFigures } from "../lib/stats.ts";
import { stopOnSignals } from "../lib/stop-signals.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const roundsAt = args.indexOf("--rounds");
const ROUNDS = quick ? 1 : Number(roundsAt >= 0 ? args[roundsAt + 1] : 7);
const FIRST_200_TIMEOUT_MS = 30_000;

const loadBefore = loadavg().map((x) => x.toFixed(2)).join(" ");
const dataDir = mkdtempSync(join(tmpdir(), "skiff-bench-push-"));
const cluster = await startLocalCluster({ dataDir });
const cleanUp = stopOnSignals(async () => {
  await cluster.stop();
  rmSync(dataDir, { recursive: true, force: true });
});
const pushMs: number[] = [];
const cliMs: number[] = [];
try {
  const login = await cluster.cli(["login", "-a", cluster.controllerUrl, "-u", "admin", "-p", cluster.adminPassword]);
  if (login.code !== 0) throw new Error(`skiff login failed:\n${login.output}`);
  for (let k = 0; k < ROUNDS; k++) {
    const name = `hello-${k}`;
    const host = `${name}.${cluster.domain}`;
    const t0 = performance.now();
    // the router is polled from the moment the CLI starts (404 unknown_route until the route exists)
    let first200: number | undefined;
    let giveUp = false;
    const poller = (async () => {
      while (first200 === undefined && !giveUp && performance.now() - t0 < FIRST_200_TIMEOUT_MS) {
        const res = await fetch(`http://127.0.0.1:${cluster.routerPort}/`, { headers: { host } }).catch(() => undefined);
        const body = res ? await res.text() : "";
        if (res?.status === 200 && body.includes("hello from skiff")) first200 = performance.now();
        else await Bun.sleep(10);
      }
    })();
    const push = await cluster.cli(["push", join(repoRoot, "examples/hello"), "--name", name]);
    const pushed = performance.now();
    giveUp = push.code !== 0;
    await poller;
    if (push.code !== 0) throw new Error(`skiff push ${name} failed:\n${push.output}`);
    if (first200 === undefined) throw new Error(`${name}: no 200 through the router within ${FIRST_200_TIMEOUT_MS} ms`);
    pushMs.push(first200 - t0);
    cliMs.push(pushed - t0);
  }
} finally {
  await cleanUp();
}

const total = summarize(pushMs);
const cli = summarize(cliMs);
const round = (x: number) => Math.round(x);
const { md } = writeReport({
  bench: "push",
  command: `./node_modules/.bin/bun bench/push/push-bench.ts${quick ? " --quick" : ""}`,
  quick,
  figures: {
    ...summaryFigures("push_to_first_200_ms", pushMs, total),
    ...summaryFigures("cli_push_exit_ms", cliMs, cli),
    ...Object.fromEntries(pushMs.map((ms, i) => [`push_to_first_200_ms.round_${i + 1}`, ms])),
  },
  tables: [
    {
      title: "skiff push examples/hello → first 200 through the router (ms), each round a new app",
      columns: ["measure (ms)", "median", "spread", "min", "max", "p99", "runs"],
      rows: [
        ["CLI start → first 200 through the router (polled every 10 ms)", round(total.median), pct(total), round(total.min), round(total.max), round(percentile(pushMs, 99)), String(total.runs)],
        ["CLI start → `skiff push` exits (instance RUNNING, then 300 ms of its first log lines)", round(cli.median), pct(cli), round(cli.min), round(cli.max), round(percentile(cliMs, 99)), String(cli.runs)],
      ],
      notes: "spread: ± half the min–max range as a percentage of the median. Target (issue 7): ≤ 2,000 ms.",
      charts: [medianP99Chart("measure (ms)")],
    },
  ],
  notes: [
    `Load average ${loadBefore} before, ${loadavg().map((x) => x.toFixed(2)).join(" ")} after; the cluster, the CLI and every instance share the machine's cores.`,
    "Each round: the CLI creates the app, uploads examples/hello, the agent stages it (Bun buildpack) and uploads the droplet, the controller places one instance, the agent downloads and starts it, health-checks its port and registers its route. The router is polled from the CLI's start (404 until the route exists).",
    "Pushed apps stay running until the cluster stops, so later rounds run beside earlier instances.",
  ],
});
console.log(await Bun.file(md).text());
