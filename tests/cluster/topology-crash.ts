// A cluster-test run that dies (issue 10): builds a topology of two hosts with a process in one,
// prints what it made as one JSON line, then throws (or, with `sigkill`, kills itself so no handler
// runs). topology.test.ts checks that nothing of it is left afterwards.
//
//   bun tests/cluster/topology-crash.ts [throw|sigkill]

import { Topology } from "./topology.ts";

const t = Topology.create();
const a = t.addHost("a");
t.addHost("b");
a.spawn("sleeper", "sleep", ["300"], {});
const deadline = Date.now() + 5000;
while (a.pids().length === 0 && Date.now() < deadline) await Bun.sleep(20);
console.log(JSON.stringify({ id: t.id, pids: a.pids() }));
if (process.argv[2] === "sigkill") process.kill(process.pid, "SIGKILL");
throw new Error("thrown on purpose by topology-crash.ts");
