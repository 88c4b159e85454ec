import { describe, expect, test } from "bun:test";
import { buildInstanceEnv, gatedArgv, launchScript } from "./instance-env.ts";
import { startFixture } from "./fixtures/start-message.ts";
import { describeExit, exitStatus } from "./exit-description.ts";
import { parseProcfile } from "./procfile.ts";
import { readAgentConfig } from "./config.ts";

const placement = { instanceId: "i1", port: 61001, host: "10.0.0.5", homeDir: "/d/app", tmpDir: "/d/tmp", pathPrefix: ["/d/bin"], basePath: "/usr/bin", startedAt: 1_700_000_000_000 };

describe("instance environment", () => {
  test("has Cloud Foundry's variables, and the platform's win over the app's", () => {
    const env = buildInstanceEnv(startFixture({ index: 3, env: { PORT: "1", FOO: "bar" } }), placement);
    expect(env).toMatchObject({ PORT: "61001", VCAP_APP_PORT: "61001", VCAP_APP_HOST: "0.0.0.0", CF_INSTANCE_INDEX: "3", MEMORY_LIMIT: "256m", HOME: "/d/app", TMPDIR: "/d/tmp", FOO: "bar", PATH: "/d/bin:/usr/bin" });
    const vcap = JSON.parse(env.VCAP_APPLICATION!);
    expect(vcap).toMatchObject({ instance_id: "i1", instance_index: 3, port: 61001, application_name: "hello", uris: ["hello.example.com"] });
    expect(env.DATABASE_URL).toBeUndefined();
  });
  test("VCAP_SERVICES by label and the URL variables from bus/service-env.ts", () => {
    const svc = (label: string, uri?: string) => ({ name: label, label, plan: "p", tags: [], instance_guid: "g", binding_guid: "b", credentials: uri ? { uri } : {} });
    // Redis bound first must not become DATABASE_URL; only database schemes qualify.
    const services = [svc("cache", "redis://r"), svc("db", "postgres://u@h/d"), svc("plain"), svc("mq", "amqp://q")];
    const env = buildInstanceEnv(startFixture({ services }), placement);
    const vcap = JSON.parse(env.VCAP_SERVICES!);
    expect(Object.keys(vcap)).toEqual(["cache", "db", "plain", "mq"]);
    expect(vcap.db[0]).toMatchObject({ name: "db", instance_name: "db", label: "db", plan: "p" });
    expect(env).toMatchObject({ DATABASE_URL: "postgres://u@h/d", REDIS_URL: "redis://r", AMQP_URL: "amqp://q" });
    const none = buildInstanceEnv(startFixture({ services: [svc("cache", "redis://r")] }), placement);
    expect(none.DATABASE_URL).toBeUndefined();
    expect(JSON.parse(buildInstanceEnv(startFixture({ services: [], env: { VCAP_SERVICES: "mine" } }), placement).VCAP_SERVICES!)).toEqual({});
  });
  test("a URL variable the user set wins over the bound service's", () => {
    const db = { name: "db", label: "postgresql", plan: "p", tags: [], instance_guid: "g", binding_guid: "b", credentials: { uri: "postgres://bound" } };
    const cache = { ...db, name: "cache", label: "redis", credentials: { uri: "redis://bound" } };
    const env = buildInstanceEnv(startFixture({ services: [db, cache], env: { DATABASE_URL: "postgres://mine" } }), placement);
    expect(env.DATABASE_URL).toBe("postgres://mine");
    expect(env.REDIS_URL).toBe("redis://bound");
  });
  test("launch script sets the fd limit and execs plain commands", () => {
    const gate = "read -r _ || exit 111\nexec </dev/null\n";
    expect(launchScript("bun run start", 1024)).toBe(gate + 'ulimit -n 1024 2>/dev/null || ulimit -n "$(ulimit -H -n)" 2>/dev/null || true\nexec bun run start\n');
    expect(launchScript("a && b", 0)).toBe(gate + "a && b\n");
    // a command that execs itself is not exec'd twice: `exec exec sleep 600` exits 126
    expect(launchScript("exec sleep 600", 0)).toBe(gate + "exec sleep 600\n");
  });
});

describe("exit descriptions", () => {
  test.each([
    [{ type: "exited" as const, code: 1 }, "exited with status 1", 1],
    [{ type: "signal" as const, signal: "SIGKILL" }, "killed by signal 9", 137],
    [{ type: "out_of_memory" as const, limitMb: 64 }, "out of memory (over the 64 MB limit)", 137],
    [{ type: "health_check_timeout" as const, timeoutSeconds: 60, check: "port" }, "health check timed out (port check, 60 s)", -1],
  ])("%o", (cause, text, status) => {
    expect(describeExit(cause)).toBe(text);
    expect(exitStatus(cause)).toBe(status);
  });
});

test("Procfile", () => {
  expect(parseProcfile("# c\nweb: bun x.ts --a\r\nworker:  node w.js\nbad line\n")).toEqual({ web: "bun x.ts --a", worker: "node w.js" });
});

test("config defaults and overrides", () => {
  const d = readAgentConfig({});
  expect(d).toMatchObject({ natsServers: ["nats://127.0.0.1:4222"], zone: "default", ip: "127.0.0.1", memoryMb: 4096, diskMb: 16384, dataDir: "./.skiff/agent", uidRange: "40000-49999" });
  expect(d.runAs).toBeUndefined();
  const c = readAgentConfig({ SKIFF_NATS_URL: "nats://a:1, nats://b:2", SKIFF_AGENT_DIR: "/x", SKIFF_DATA_DIR: "/y", SKIFF_AGENT_MEMORY_MB: "512", SKIFF_AGENT_RUN_AS: "" });
  expect(c).toMatchObject({ natsServers: ["nats://a:1", "nats://b:2"], dataDir: "/x", memoryMb: 512, runAs: "" });
});

test("sandbox and limits config (issue 25): on by default, off with --no-sandbox or SKIFF_AGENT_SANDBOX=off", () => {
  expect(readAgentConfig({})).toMatchObject({ sandbox: "auto", pidsMax: 1024, diskEnforcement: "auto", stagingMemoryMb: 1024, stagingDiskMb: 4096, sandboxBind: [] });
  expect(readAgentConfig({}, ["--no-sandbox"]).sandbox).toBe("off");
  expect(readAgentConfig({ SKIFF_AGENT_SANDBOX: "off" }).sandbox).toBe("off");
  expect(readAgentConfig({ SKIFF_AGENT_SANDBOX_BIND: "/opt/node:relative: /opt/java", SKIFF_AGENT_PIDS_MAX: "64" })).toMatchObject({ sandboxBind: ["/opt/node", "/opt/java"], pidsMax: 64 });
});

test("the gate opens before the sandbox starts: bwrap and all it starts inherit the cgroup", () => {
  expect(gatedArgv(["/usr/bin/bwrap", "--", "sh"])).toEqual(["/bin/sh", "-c", 'read -r _ || exit 111\nexec </dev/null\nexec "$@"\n', "skiff-gate", "/usr/bin/bwrap", "--", "sh"]);
});
