// How the router process starts: it refuses uWS's JS fallback and Bun, serves TLS through SSLApp
// when a certificate is configured, and enforces the body-size limit.

import { afterAll, expect, test } from "bun:test";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../support/ports.ts";
import { harnessForFile } from "./file-harness.ts";
import { root, startRouter, waitForStatus } from "./router-harness.ts";

const h = harnessForFile();
const dir = mkdtempSync(join(tmpdir(), "skiff-router-tls-"));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("refuses to run on uWebSockets.js's JS fallback", () => {
  const r = spawnSync("node", [h.bundle], { env: { ...process.env, UWS_USE_FALLBACK: "1", SKIFF_NATS_URL: h.nats.url }, encoding: "utf8", timeout: 15_000 });
  expect(r.status).toBe(1);
  expect(r.stdout + r.stderr).toContain("fallback");
});

test("refuses uWebSockets.js's JS fallback by its missing native functions, without UWS_USE_FALLBACK (issue 5)", () => {
  // The bundle beside a uWebSockets.js that is the package's own JS fallback, as when no binary fits
  // the Node ABI: only the function check can tell.
  const fallbackDir = mkdtempSync(join(tmpdir(), "skiff-router-fallback-"));
  try {
    const pkg = join(fallbackDir, "node_modules", "uWebSockets.js");
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "uWebSockets.js", main: "index.js" }));
    writeFileSync(join(pkg, "index.js"), `module.exports = require(${JSON.stringify(join(root, "node_modules/uWebSockets.js/dist/index.js"))});\n`);
    copyFileSync(h.bundle, join(fallbackDir, "router.mjs"));
    const env: Record<string, string | undefined> = { ...process.env, SKIFF_NATS_URL: h.nats.url, SKIFF_ROUTER_PORT: "0", SKIFF_ROUTER_STATUS_PORT: "0", SKIFF_MATCHER_WASM: join(root, "wasm/dist/matcher.wasm") };
    delete env.UWS_USE_FALLBACK;
    const r = spawnSync("node", [join(fallbackDir, "router.mjs")], { env, encoding: "utf8", timeout: 15_000 });
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toContain("uWebSockets.js fell back to its JS implementation");
  } finally {
    rmSync(fallbackDir, { recursive: true, force: true });
  }
});

test("refuses to run under Bun", () => {
  const r = spawnSync(join(root, "node_modules/.bin/bun"), [h.bundle], { env: { ...process.env, SKIFF_NATS_URL: h.nats.url }, encoding: "utf8", timeout: 15_000 });
  expect(r.status).toBe(1);
  expect(r.stdout + r.stderr).toContain("must run under Node");
});

test("TLS via SSLApp when a certificate and key are configured", async () => {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=tls.skiff.localhost"], { stdio: "ignore" });
  const router = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_TLS_CERT: cert, SKIFF_ROUTER_TLS_KEY: key });
  const backend = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (req) => new Response(`proto=${req.headers.get("x-forwarded-proto")}`) });
  try {
    await h.register({ port: backend.port!, uris: ["tls.skiff.localhost"] });
    const url = `https://127.0.0.1:${router.port}/`;
    const deadline = Date.now() + 5000;
    let text = "";
    while (Date.now() < deadline) {
      const res = await fetch(url, { headers: { host: "tls.skiff.localhost" }, tls: { rejectUnauthorized: false } } as RequestInit);
      text = await res.text();
      if (res.status === 200) break;
      await Bun.sleep(50);
    }
    expect(text).toBe("proto=https");
  } finally {
    backend.stop(true);
    await router.process.stop();
  }
});

test("a body over SKIFF_ROUTER_MAX_BODY_BYTES gets 413", async () => {
  const router = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_MAX_BODY_BYTES: "1000" });
  const backend = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: async (req) => new Response(String((await req.arrayBuffer()).byteLength)) });
  try {
    await h.register({ port: backend.port!, uris: ["limit.skiff.localhost"] });
    await waitForStatus(router.url, "limit.skiff.localhost", 200);
    const ok = await fetch(router.url, { method: "POST", body: "x".repeat(1000), headers: { host: "limit.skiff.localhost" } });
    expect(await ok.text()).toBe("1000");
    const big = await fetch(router.url, { method: "POST", body: "x".repeat(1001), headers: { host: "limit.skiff.localhost" } });
    expect(big.status).toBe(413);
  } finally {
    backend.stop(true);
    await router.process.stop();
  }
});

test("stale endpoints are pruned by their own threshold", async () => {
  const router = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_PRUNE_INTERVAL_SECONDS: "0.2" });
  const backend = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("ok") });
  try {
    await h.register({ port: backend.port!, uris: ["stale.skiff.localhost"], stale_threshold_in_seconds: 1 });
    await h.register({ port: backend.port!, uris: ["lasting.skiff.localhost"] });
    await waitForStatus(router.url, "stale.skiff.localhost", 200);
    await waitForStatus(router.url, "stale.skiff.localhost", 404, 5000);
    expect((await fetch(router.url, { headers: { host: "lasting.skiff.localhost" } })).status).toBe(200);
  } finally {
    backend.stop(true);
    await router.process.stop();
  }
}, 20_000);

test("port 0: the ready line reports the ports the OS assigned, and both answer", async () => {
  const router = await startRouter(h.bundle, h.nats); // the harness asks for port 0
  try {
    expect(router.port).toBeGreaterThan(0);
    expect(router.statusPort).toBeGreaterThan(0);
    expect(router.port).not.toBe(router.statusPort);
    expect((await fetch(router.url, { headers: { host: "nothing.skiff.localhost" } })).headers.get("x-cf-routererror")).toBe("unknown_route");
    expect((await fetch(`${router.statusUrl}/health`)).status).toBe(200);
  } finally {
    await router.process.stop();
  }
});

// Regression: uWS listens with SO_REUSEPORT by default, so a second router (a test's, or a stale one)
// on a taken port started "fine" and silently received a share of the first one's connections. The first
// router takes a fixed port: Linux never shares a port the OS picked (port 0), even with SO_REUSEPORT.
test("a second router on a port in use fails to start with a clear error", async () => {
  const first = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_PORT: String(await freePort()), SKIFF_ROUTER_STATUS_PORT: String(await freePort()) });
  try {
    const r = spawnSync("node", [h.bundle], {
      env: { ...process.env, SKIFF_NATS_URL: h.nats.url, SKIFF_ROUTER_PORT: String(first.port), SKIFF_ROUTER_STATUS_PORT: "0", SKIFF_ROUTER_STATUS_PASS: "x" },
      encoding: "utf8",
      timeout: 15_000,
    });
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toContain(`cannot listen on port ${first.port} (proxy): it is in use`);
    const statusClash = spawnSync("node", [h.bundle], {
      env: { ...process.env, SKIFF_NATS_URL: h.nats.url, SKIFF_ROUTER_PORT: "0", SKIFF_ROUTER_STATUS_PORT: String(first.statusPort), SKIFF_ROUTER_STATUS_PASS: "x" },
      encoding: "utf8",
      timeout: 15_000,
    });
    expect(statusClash.status).toBe(1);
    expect(statusClash.stdout + statusClash.stderr).toContain("SKIFF_ROUTER_STATUS_PORT");
    // the first router still has its port to itself
    expect((await fetch(first.url, { headers: { host: "nothing.skiff.localhost" } })).status).toBe(404);
  } finally {
    await first.process.stop();
  }
}, 30_000);
