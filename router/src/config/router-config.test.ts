import { expect, test } from "bun:test";
import { ConfigError, readRouterConfig } from "./router-config.ts";

test("defaults follow the conventions", () => {
  const c = readRouterConfig({});
  expect(c.port).toBe(8080);
  expect(c.statusPort).toBe(8081);
  expect(c.natsServers).toEqual(["nats://127.0.0.1:4222"]);
  expect(c.drainSeconds).toBe(20);
  // gorouter's endpoint_timeout; 900 s left requests written into a cut link hanging (issue 10)
  expect(c.responseTimeoutMs).toBe(60_000);
  expect(c.statusPassGenerated).toBe(true);
  expect(c.statusPass.length).toBeGreaterThan(8);
});

test("env overrides and validation", () => {
  const c = readRouterConfig({ SKIFF_ROUTER_PORT: "9000", SKIFF_NATS_URL: "nats://a:1, nats://b:2", SKIFF_ROUTER_DRAIN_SECONDS: "1", SKIFF_ROUTER_STATUS_PASS: "p" });
  expect(c.port).toBe(9000);
  expect(c.natsServers).toEqual(["nats://a:1", "nats://b:2"]);
  expect(c.drainSeconds).toBe(1);
  expect(c.statusPassGenerated).toBe(false);
  expect(() => readRouterConfig({ SKIFF_ROUTER_PORT: "x" })).toThrow(ConfigError);
  expect(() => readRouterConfig({ SKIFF_ROUTER_TLS_CERT: "/c" })).toThrow(ConfigError);
  expect(() => readRouterConfig({ SKIFF_ROUTER_PORT: "70000" })).toThrow(ConfigError);
  expect(() => readRouterConfig({ SKIFF_ROUTER_STATUS_PORT: "80.5" })).toThrow(ConfigError);
});

test("port 0 asks the OS for a free port", () => {
  const c = readRouterConfig({ SKIFF_ROUTER_PORT: "0", SKIFF_ROUTER_STATUS_PORT: "0" });
  expect(c.port).toBe(0);
  expect(c.statusPort).toBe(0);
});
