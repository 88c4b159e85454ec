// How the agent's Bun is started (issue 17): JavaScriptCore's JIT tiers, chosen with SKIFF_AGENT_JIT
// (off by default). Measured with bench/agent/agent-memory.ts (100 idle sandboxed instances, 5 s
// quiet, after 60 starts and stops; bench/results/agent.md):
//
// | SKIFF_AGENT_JIT | agent RSS with 100 | a log line relayed | 100-entry heartbeat encoded+decoded | 40 MB droplet unpacked |
// | --- | --- | --- | --- | --- |
// | full (before issue 17) | 65-66 MiB | 10 µs | 0.4 ms | 0.6 s |
// | baseline (DFG and FTL off) | 59-60 MiB | 15 µs | 1.4 ms | 1.8 s |
// | off (interpreter only), the default | 52 MiB | 33 µs | 6 ms | 1.7 s |
//
// The optimizing tiers' memory is the compilers' own code pages in Bun's binary (41.9 → 35.2 MiB of
// it touched) and their code and data (21 → 14.5 MiB anonymous). An agent mostly waits; what it does
// per instance is small and rare, and a start's latency did not change measurably (its time is the
// kernel's and the app's). The price is CPU on a busy host: 5,000 log lines a second cost the agent
// 16% of a core instead of 5%, and a large droplet unpacks 3x slower (Bun's stream builtins run in
// the interpreter too). Set SKIFF_AGENT_JIT=baseline or full on hosts where that matters more than
// memory. These are JSC options read from the environment when Bun starts, so every launcher of the
// agent (npm start's cluster, the benches, a systemd unit's environment file) starts it with this
// environment; an operator's own BUN_JSC_* settings win.

export const AGENT_JIT_MODES = ["off", "baseline", "full"] as const;
export type AgentJit = (typeof AGENT_JIT_MODES)[number];

const OPTIONS: Record<AgentJit, Record<string, string>> = {
  off: { BUN_JSC_useJIT: "0" },
  baseline: { BUN_JSC_useDFGJIT: "0", BUN_JSC_useFTLJIT: "0" },
  full: {},
};

/** The JSC options for SKIFF_AGENT_JIT (default off). Throws on a value it does not know. */
export function jitOptions(mode: string | undefined): Record<string, string> {
  const m = (mode || "off") as AgentJit;
  if (!AGENT_JIT_MODES.includes(m)) throw new Error(`SKIFF_AGENT_JIT="${mode}" must be one of ${AGENT_JIT_MODES.join(", ")}`);
  return { ...OPTIONS[m] };
}

/** The environment to start the agent's Bun with: SKIFF_AGENT_JIT's options, unless `env` sets BUN_JSC_* JIT options itself. */
export function agentRuntimeEnv(env: Record<string, string | undefined> = process.env): Record<string, string> {
  if (Object.keys(env).some((k) => /^BUN_JSC_use(DFG|FTL)?JIT$/.test(k))) return {};
  return jitOptions(env.SKIFF_AGENT_JIT);
}

/** What the running agent's JIT is, for its ready line. */
export function jitInEffect(env: Record<string, string | undefined> = process.env): string {
  const off = (v: string | undefined) => v === "0" || v === "false";
  if (off(env.BUN_JSC_useJIT)) return "off (interpreter only)";
  if (off(env.BUN_JSC_useDFGJIT)) return "baseline";
  return off(env.BUN_JSC_useFTLJIT) ? "baseline + DFG" : "full (started without agent/runtime-env.ts's environment: 13 MiB more)";
}
