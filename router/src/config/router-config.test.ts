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
  // no password in the environment: main.ts keeps a generated one in this file (issue 24)
  expect(c.statusPass).toBeUndefined();
  expect(c.statusPassFile).toBe(".skiff/router/status-password");
  // nobody is trusted and /metrics wants the credentials unless lists are given (issue 24)
  expect(c.trustedProxies.size).toBe(0);
  expect(c.metricsAllow.size).toBe(0);
});

test("env overrides and validation", () => {
  const c = readRouterConfig({ SKIFF_ROUTER_PORT: "9000", SKIFF_NATS_URL: "nats://a:1, nats://b:2", SKIFF_ROUTER_DRAIN_SECONDS: "1", SKIFF_ROUTER_STATUS_PASS: "p" });
  expect(c.port).toBe(9000);
  expect(c.natsServers).toEqual(["nats://a:1", "nats://b:2"]);
  expect(c.drainSeconds).toBe(1);
  expect(c.statusPass).toBe("p");
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

test("trusted front ends and metrics scrapers are CIDR lists, checked at start (issue 24)", () => {
  const c = readRouterConfig({ SKIFF_ROUTER_TRUSTED_PROXIES: "10.0.0.0/8, 192.0.2.7", SKIFF_ROUTER_METRICS_ALLOW: "198.51.100.0/24", SKIFF_ROUTER_STATUS_PASS_FILE: "/etc/skiff/router-status" });
  expect(c.trustedProxies.entries).toEqual(["10.0.0.0/8", "192.0.2.7/32"]);
  expect(c.trustedProxies.contains("10.1.2.3")).toBe(true);
  expect(c.metricsAllow.contains("198.51.100.9")).toBe(true);
  expect(c.metricsAllow.contains("10.1.2.3")).toBe(false);
  expect(c.statusPassFile).toBe("/etc/skiff/router-status");
  expect(() => readRouterConfig({ SKIFF_ROUTER_TRUSTED_PROXIES: "lb.example.com" })).toThrow(ConfigError);
  expect(() => readRouterConfig({ SKIFF_ROUTER_METRICS_ALLOW: "10.0.0.0/40" })).toThrow(/SKIFF_ROUTER_METRICS_ALLOW/);
});

test("SKIFF_ROUTER_WORKERS: default one per CPU the process may use; 1-256 (issue 16)", async () => {
  const { availableParallelism } = await import("node:os");
  expect(readRouterConfig({}).workers).toBe(Math.min(256, availableParallelism()));
  expect(readRouterConfig({ SKIFF_ROUTER_WORKERS: "3" }).workers).toBe(3);
  for (const bad of ["0", "-1", "1.5", "x", "257"]) expect(() => readRouterConfig({ SKIFF_ROUTER_WORKERS: bad })).toThrow(ConfigError);
  expect(readRouterConfig({}).faultInjection).toBe(false);
  expect(readRouterConfig({ SKIFF_ROUTER_FAULT_INJECTION: "1" }).faultInjection).toBe(true);
});
