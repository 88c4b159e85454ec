// The registry of benchmarks: `npm run bench` runs them in this order; tests run each with --quick.

/** Every benchmark, in the order a full run takes them. */
export const BENCHES: { name: string; script: string; what: string }[] = [
  { name: "bus", script: "bus/bus-bench.ts", what: "CBOR vs JSON codec, NATS round trips" },
  { name: "matcher", script: "matcher/matcher-bench.ts", what: "WASM route matcher vs JS structures" },
  { name: "router", script: "router/router-bench.ts", what: "the router vs nginx and HAProxy" },
  { name: "router-profile", script: "router/router-profile.ts", what: "where the router's CPU goes per small request (node --cpu-prof)" },
  { name: "agent", script: "agent/agent-bench.ts", what: "start-to-routable latency, staging, RSS" },
  { name: "controller", script: "controller/controller-bench.ts", what: "health-manager pass with 10,000 instances, GET /v3/apps p99" },
  { name: "push", script: "push/push-bench.ts", what: "skiff push examples/hello to the first 200 through the router" },
  { name: "multi-router", script: "multi-router/multi-router-bench.ts", what: "two routers behind HAProxy, one drained mid-run: zero failures" },
];

