// Failure paths against the real router process: an upstream that dies mid-response, a client that
// goes away mid-request, Connection: close, and a request that never gets an answer.

import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Server as NetServer, Socket } from "node:net";
import { eventually } from "../support/ports.ts";
import { rawBackend, rawRequest, startHarness, startRouter, stopSuite, waitForStatus, type Harness, type RunningRouter } from "./router-harness.ts";

let h: Harness;
let router: RunningRouter;
const servers: NetServer[] = [];

async function route(host: string, port: number): Promise<void> {
  await h.register({ port, uris: [host] });
}

beforeAll(async () => {
  h = await startHarness();
  router = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_RESPONSE_TIMEOUT_MS: "1500" });
}, 60_000);

afterAll(() => stopSuite(h, servers));

test("an upstream that closes mid-body: the client's connection is closed, never a short 200", async () => {
  const b = await rawBackend(servers, (s) => {
    s.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    setTimeout(() => s.destroy(), 20);
  });
  await route("cut.skiff.localhost", b.port);
  await Bun.sleep(200);
  const r = await rawRequest(router.port, "GET / HTTP/1.1\r\nHost: cut.skiff.localhost\r\n\r\n", 2000);
  expect(r.closed).toBe(true);
  expect(r.text).toStartWith("HTTP/1.1 200");
  expect(r.text.length).toBeLessThan(r.text.indexOf("\r\n\r\n") + 4 + 100);
});

test("a close-delimited upstream body is relayed whole", async () => {
  const b = await rawBackend(servers, (s) => {
    s.write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-");
    setTimeout(() => s.end("close"), 20);
  });
  await route("eof.skiff.localhost", b.port);
  await waitForStatus(router.url, "eof.skiff.localhost", 200);
  expect(await (await fetch(router.url, { headers: { host: "eof.skiff.localhost" } })).text()).toBe("until-close");
});

test("a client that goes away cancels the upstream request", async () => {
  let upstream: Socket | undefined;
  const b = await rawBackend(servers, (s) => {
    upstream = s; // never answers
  });
  await route("abort.skiff.localhost", b.port);
  await Bun.sleep(200);
  void rawRequest(router.port, "GET / HTTP/1.1\r\nHost: abort.skiff.localhost\r\n\r\n", 300);
  await eventually(() => upstream, 3000, "the request to reach the backend");
  await eventually(() => (upstream!.destroyed || upstream!.readableEnded ? true : undefined), 3000, "the upstream socket to close");
});

test("no answer within the response timeout: 504 endpoint_timeout", async () => {
  const b = await rawBackend(servers, () => {});
  await route("mute.skiff.localhost", b.port);
  await Bun.sleep(200);
  const res = await fetch(router.url, { headers: { host: "mute.skiff.localhost" } });
  expect(res.status).toBe(504);
  expect(res.headers.get("x-cf-routererror")).toBe("endpoint_timeout");
}, 10_000);

test("Connection: close from the client closes after the response", async () => {
  const b = await rawBackend(servers, (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  await route("close.skiff.localhost", b.port);
  await waitForStatus(router.url, "close.skiff.localhost", 200);
  const r = await rawRequest(router.port, "GET / HTTP/1.1\r\nHost: close.skiff.localhost\r\nConnection: close\r\n\r\n", 2000);
  expect(r.text).toStartWith("HTTP/1.1 200");
  expect(r.text).toEndWith("ok");
  expect(r.closed).toBe(true);
});

test("keep-alive upstream connections are reused across requests", async () => {
  const b = await rawBackend(servers, (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  await route("reuse.skiff.localhost", b.port);
  await waitForStatus(router.url, "reuse.skiff.localhost", 200);
  for (let i = 0; i < 20; i++) await fetch(router.url, { headers: { host: "reuse.skiff.localhost" } });
  expect(b.sockets.length).toBeLessThanOrEqual(2);
});

test("204 and 304 are relayed without a body, and the connection stays usable", async () => {
  const b = await rawBackend(servers, (s, head) => {
    if (head.startsWith("GET /204")) s.write("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
    else if (head.startsWith("GET /304")) s.write('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n');
    else s.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext");
  });
  await route("nobody.skiff.localhost", b.port);
  await waitForStatus(router.url, "nobody.skiff.localhost", 200);
  const r204 = await rawRequest(router.port, "GET /204 HTTP/1.1\r\nHost: nobody.skiff.localhost\r\n\r\n", 500);
  expect(r204.text).toStartWith("HTTP/1.1 204");
  expect(r204.text.toLowerCase()).not.toContain("content-length");
  const r304 = await rawRequest(router.port, "GET /304 HTTP/1.1\r\nHost: nobody.skiff.localhost\r\n\r\n", 500);
  expect(r304.text).toStartWith("HTTP/1.1 304");
  expect(r304.text.toLowerCase()).toContain('etag: "x"');
  // the pooled upstream connection is still in step
  expect(await (await fetch(`${router.url}/x`, { headers: { host: "nobody.skiff.localhost" } })).text()).toBe("next");
});
