// The figures of docs/load-balancers.md's "Measured" table: failed requests per 100k in the idle race
// (idle-race.ts), through the doc's nginx and HAProxy and through their keep-alive defaults, all four
// in front of the same two routers and raced by the same waves.
//   ./node_modules/.bin/bun tests/lb/measure-idle-race.ts [--waves 20] [--clients 48] [--no-pause]
// --no-pause leaves the front ends running through each tick (the race is then as narrow as a front
// end's reaction to a close, and what it hits depends on this machine's load); by default they are held
// from just before each wave to 10 ms after the tick, as a busy host would hold them.

import { stopAllProcesses } from "../support/processes.ts";
import { runIdleRace, startTickWatch } from "./idle-race.ts";
import { LB_HOST, startFrontEnd, startLbCluster } from "./lb-cluster.ts";

const args = process.argv.slice(2);
const opt = (name: string, def: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : def);
const waves = opt("--waves", 20);
const clients = opt("--clients", 48);
const pause = !args.includes("--no-pause");
const names = ["nginx", "haproxy", "nginx-keepalive-defaults", "haproxy-http11-check-only"];

const cluster = await startLbCluster({ SKIFF_ROUTER_TRUSTED_PROXIES: "127.0.0.1/32" });
let code = 0;
try {
  const fes = await Promise.all(names.map((n) => startFrontEnd(cluster, n)));
  const watch = startTickWatch(cluster.routers.map((r) => r.port));
  await watch.ready;
  const started = Date.now();
  const tallies = await runIdleRace({
    frontEnds: Object.fromEntries(fes.map((f) => [f.name, f.port])),
    ticks: watch.ticks,
    clients,
    waves,
    host: LB_HOST,
    ...(pause ? { leadMs: 15, spreadMs: 10, burst: 4, pause: fes.map((f) => f.process.pid) } : { leadMs: 7, spreadMs: 10, burst: 4 }),
    onWave: (w) => console.error(`wave at router ${w.router + 1}'s tick, connections idle ${(w.idleMs / 1000).toFixed(1)} s; failed so far: ${names.map((n) => `${n} ${w.tallies[n]!.failed}`).join(", ")}`),
  });
  await watch.stop();
  console.log(`idle race, ${waves} waves of ${clients} POSTs per front end (${pause ? "front ends held from 5 ms before each wave to 10 ms after the tick" : "front ends never held"}), ${((Date.now() - started) / 1000).toFixed(0)} s:`);
  console.log("| front end | requests | failed | failed per 100k | outcomes |\n| --- | --- | --- | --- | --- |");
  for (const n of names) {
    const t = tallies[n]!;
    console.log(`| ${n} | ${t.sent} | ${t.failed} | ${Math.round((t.failed / t.sent) * 100_000)} | ${Object.entries(t.outcomes).map(([o, c]) => `${o}: ${c}`).join(", ")} |`);
  }
} catch (err) {
  console.error(err);
  code = 1;
} finally {
  await stopAllProcesses();
  await cluster.stop();
}
process.exit(code);
