// uWebSockets.js v20.30's documented limits (router/README.md, "Known limits"), pinned as they are
// today: each test asserts the current behaviour, so an upgrade of uWS that changes one fails here and
// the README gets updated with it, instead of the limit silently changing (issue 5).

import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type Server as NetServer } from "node:net";
import { Subjects } from "../../bus/index.ts";
import { stopAllProcesses } from "../support/processes.ts";
import { rawBackend, rawRequest, startHarness, startRouter, waitForStatus, type Harness, type RunningRouter } from "./router-harness.ts";

let h: Harness;
let router: RunningRouter;
const servers: NetServer[] = [];
const heads: string[] = [];
const host = "limits.skiff.localhost";

beforeAll(async () => {
  h = await startHarness();
  router = await startRouter(h.bundle, h.nats);
  const b = await rawBackend(servers, (s, head) => {
    heads.push(head);
    setTimeout(() => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 20);
  });
  h.bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: b.port, uris: [host] });
  await h.bus.flush();
  await waitForStatus(router.url, host, 200);
}, 60_000);

afterAll(async () => {
  await stopAllProcesses();
  for (const s of servers) s.close();
  await h?.stop();
});

/** Writes `parts` with `gapMs` between them; collects what comes back for `waitMs`. */
function sendInParts(parts: string[], gapMs: number, waitMs: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(router.port, "127.0.0.1");
    socket.setNoDelay(true);
    let text = "";
    let closed = false;
    socket.on("data", (d) => (text += d.toString("latin1")));
    socket.on("error", () => {});
    socket.on("close", () => (closed = true));
    socket.on("connect", async () => {
      for (const [i, part] of parts.entries()) {
        if (i > 0) await Bun.sleep(gapMs);
        if (!socket.destroyed) socket.write(part);
      }
      setTimeout(() => {
        socket.destroy();
        resolve({ text, closed });
      }, waitMs);
    });
  });
}

test("pipelined requests while a proxied response is pending: uWS 20.30 aborts the connection, nothing is answered", async () => {
  const one = `GET /first HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  const r = await rawRequest(router.port, one + one.replace("/first", "/second"), 1500);
  expect(r.closed).toBe(true);
  expect(r.text).toBe("");
});

test("an HTTP/1.0 request gets no answer, and the connection stays open (until uWS's idle timeout)", async () => {
  heads.length = 0;
  const r = await rawRequest(router.port, `GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`, 1500);
  expect(r.text).toBe("");
  expect(r.closed).toBe(false);
  expect(heads).toHaveLength(0);
});

test("a request head over 4 KiB: served in one write, dropped without an answer when split across reads", async () => {
  const head = `GET /big-head HTTP/1.1\r\nHost: ${host}\r\nX-Pad: ${"p".repeat(4900)}\r\n\r\n`;
  expect(head.length).toBeGreaterThan(4096);
  expect(head.length).toBeLessThan(32 * 1024); // under SKIFF_ROUTER_MAX_HEADER_BYTES: only uWS's buffer matters
  const whole = await sendInParts([head], 0, 1000);
  expect(whole.text).toStartWith("HTTP/1.1 200");
  const split = await sendInParts([head.slice(0, 1000), head.slice(1000)], 150, 1000);
  expect(split.text).toBe("");
  expect(split.closed).toBe(true);
  // the same head under 4 KiB survives the same split
  const small = `GET /small-head HTTP/1.1\r\nHost: ${host}\r\nX-Pad: ${"p".repeat(3000)}\r\n\r\n`;
  const smallSplit = await sendInParts([small.slice(0, 1000), small.slice(1000)], 150, 1000);
  expect(smallSplit.text).toStartWith("HTTP/1.1 200");
});

test("Content-Length with Transfer-Encoding: uWS closes the connection without an answer; most garbage gets no answer and waits for the idle timeout", async () => {
  const both = await rawRequest(router.port, `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 1500);
  expect(both.text).toBe("");
  expect(both.closed).toBe(true);
  const emptyName = await rawRequest(router.port, "GET / HTTP/1.1\r\n: x\r\n\r\n", 1500);
  expect(emptyName.text).toBe("");
  expect(emptyName.closed).toBe(true);
  // a request line uWS cannot parse is neither answered nor closed: uWS's 10 s idle timeout ends it
  const garbage = await rawRequest(router.port, "GARBAGE\r\n\r\n", 1500);
  expect(garbage.text).toBe("");
  expect(garbage.closed).toBe(false);
  expect((await fetch(router.url, { headers: { host } })).status).toBe(200);
});
