import { expect, test } from "bun:test";
import { agentRuntimeEnv, jitInEffect, jitOptions } from "./runtime-env.ts";

test("the agent's JIT: off by default, baseline or full when asked, an operator's BUN_JSC_* wins (issue 17)", () => {
  expect(agentRuntimeEnv({})).toEqual({ BUN_JSC_useJIT: "0" });
  expect(agentRuntimeEnv({ SKIFF_AGENT_JIT: "baseline" })).toEqual({ BUN_JSC_useDFGJIT: "0", BUN_JSC_useFTLJIT: "0" });
  expect(agentRuntimeEnv({ SKIFF_AGENT_JIT: "full" })).toEqual({});
  expect(agentRuntimeEnv({ BUN_JSC_useJIT: "1" })).toEqual({});
  expect(() => jitOptions("fast")).toThrow(/SKIFF_AGENT_JIT="fast" must be one of off, baseline, full/);
  expect([jitInEffect({ BUN_JSC_useJIT: "0" }), jitInEffect({ BUN_JSC_useDFGJIT: "0", BUN_JSC_useFTLJIT: "0" }), jitInEffect({})]).toEqual(["off (interpreter only)", "baseline", expect.stringMatching(/^full/)]);
});
