// uWebSockets.js v20.30's documented limits (router/README.md, "Known limits"; what a load balancer in
// front does about each: docs/load-balancers.md), pinned as they are today: each test asserts the
// current behaviour, so an upgrade of uWS that changes one fails here and the docs get updated with it,
// instead of the limit silently changing (issues 5 and 26).

import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rawBackend, rawRequest, startHarness, startRouter, stopSuite, waitForStatus, type Harness, type RunningRouter } from "./router-harness.ts";
import { startFrontEnd } from "../lb/lb-cluster.ts";

let h: Harness;
let router: RunningRouter;
const servers: NetServer[] = [];
const heads: string[] = [];
const host = "limits.skiff.localhost";
const dir = mkdtempSync(join(tmpdir(), "skiff-uws-limits-"));
/** a keep-alive connection left idle after one response: uWS closes it on its own (the last test) */
let idle: Promise<{ idleMs: number }>;

beforeAll(async () => {
  h = await startHarness();
  // one worker: every worker runs its own idle timer
  router = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_WORKERS: "1" });
  const b = await rawBackend(servers, (s, head) => {
    heads.push(head);
    setTimeout(() => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 20);
  });
  await h.register({ port: b.port, uris: [host] });
  await waitForStatus(router.url, host, 200);
  idle = idleClose();
}, 60_000);

afterAll(async () => {
  await stopSuite(h, servers);
  rmSync(dir, { recursive: true, force: true });
});

/** One request on a new keep-alive connection, then nothing: how long after the response uWS closes it. */
function idleClose(): Promise<{ idleMs: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect(router.port, "127.0.0.1");
    let answeredAt = 0;
    socket.on("error", () => {});
    socket.on("data", () => (answeredAt ||= performance.now()));
    socket.on("close", () => (answeredAt ? resolve({ idleMs: performance.now() - answeredAt }) : reject(new Error("closed before the answer"))));
    socket.write(`GET /idle HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  });
}

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

test("pipelined requests while a proxied response is pending: uWS 20.30 aborts the connection, nothing is answered (and, in one read, nothing is forwarded: issue 19)", async () => {
  // uWS parses the whole read after the handler returns and closes the connection on a second request
  // while the first waits; res.pause() does not stop that parse (measured with a bare uWS app), only
  // later reads. The router forwards a request on the next turn of the event loop, after that parse.
  heads.length = 0;
  const one = `GET /first HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  const r = await rawRequest(router.port, one + one.replace("/first", "/second"), 1500);
  expect(r.closed).toBe(true);
  expect(r.text).toBe("");
  expect(heads.filter((h) => /^GET \/(first|second) /.test(h))).toEqual([]);
});

test("a request pipelined in a later read, while the first waits upstream: the first has reached the instance, then uWS aborts the connection and neither is answered (issue 19)", async () => {
  // Pausing every connection until its answer is sent would keep the second request unread (res.pause()
  // stops uWS reading the socket), but costs 3 epoll_ctl calls per request (strace of a bare uWS app:
  // 72,707 for 24,169 requests), more than half the 5 system calls a proxied request makes today.
  heads.length = 0;
  const r = await sendInParts([`GET /first-read HTTP/1.1\r\nHost: ${host}\r\n\r\n`, `GET /second-read HTTP/1.1\r\nHost: ${host}\r\n\r\n`], 5, 500);
  expect(r).toEqual({ text: "", closed: true });
  expect(heads.map((h) => h.split(" ")[1]).filter((p) => p !== "/idle")).toEqual(["/first-read"]);
});

test("a chunk extension (RFC 9112 §7.1.1) is read by uWS 20.30 as digits of the chunk size: the body it hands the router holds the client's framing and never ends (issue 19)", async () => {
  // uWS maps every byte of the size line above a space to a hex digit (`;` is 11, `=` 13, `a`-`g` 10-16;
  // past `g` it refuses the body and closes): `1;a=b` is a chunk of 0x1badb bytes. The router never sees
  // the size line, so it can neither drop the extension nor tell the chunk from a real one of that size.
  heads.length = 0;
  const bodies: string[] = [];
  const b = await rawBackend(servers, (s, head, rest) => {
    if (head.startsWith("GET ")) return void s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    heads.push(head);
    s.removeAllListeners("data");
    let body = rest.toString("latin1");
    bodies.push(body);
    s.on("data", (d) => (bodies[bodies.length - 1] = body += d.toString("latin1")));
  });
  const extHost = "ext.limits.skiff.localhost";
  await h.register({ port: b.port, uris: [extHost] });
  await waitForStatus(router.url, extHost, 200);
  heads.length = 0;
  bodies.length = 0;
  const r = await rawRequest(router.port, `PUT /ext HTTP/1.1\r\nHost: ${extHost}\r\nTransfer-Encoding: chunked\r\n\r\n1;a=b\r\nw\r\n0\r\n\r\n`, 1500);
  expect(r).toEqual({ text: "", closed: false }); // uWS waits for 0x1badb - 8 more bytes, then its idle timeout closes
  expect(heads).toHaveLength(1);
  // the client's framing forwarded as the data of one chunk, and no last chunk
  expect(bodies).toEqual(["8\r\nw\r\n0\r\n\r\n\r\n"]);
  // with a space before the `;` (BWS, RFC 9112 §7.1.1) uWS stops at the space and skips the rest of the line: read right
  const spaced = await rawRequest(router.port, `PUT /ext HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n1 ;a=b\r\nw\r\n0\r\n\r\n`, 1500);
  expect(spaced.text).toStartWith("HTTP/1.1 200");
});

test("Expect: 100-continue: uWS 20.30 writes 100 Continue before each handler a request reaches, so a GET (the WebSocket route yields it to the proxy's) gets two, a POST one; the instance sees no Expect", async () => {
  heads.length = 0;
  const get = await rawRequest(router.port, `GET /expect HTTP/1.1\r\nHost: ${host}\r\nExpect: 100-continue\r\n\r\n`, 500);
  expect(get.text).toStartWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n");
  const post = await rawRequest(router.port, `POST /expect HTTP/1.1\r\nHost: ${host}\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi`, 500);
  expect(post.text).toStartWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n");
  expect(heads).toHaveLength(2);
  for (const head of heads) expect(head.toLowerCase()).not.toContain("expect:");
});

test("an HTTP/1.0 request gets no answer, and the connection stays open (until uWS's idle timeout)", async () => {
  heads.length = 0;
  const r = await rawRequest(router.port, `GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`, 1500);
  expect(r.text).toBe("");
  expect(r.closed).toBe(false);
  expect(heads).toHaveLength(0);
});

test("no version but HTTP/1.1 reaches the router (HTTP/1.2, HTTP/2.0 get no answer either), so it can never answer 505", async () => {
  heads.length = 0;
  const [v12, v20] = await Promise.all(["HTTP/1.2", "HTTP/2.0"].map((v) => rawRequest(router.port, `GET / ${v}\r\nHost: ${host}\r\n\r\n`, 1500)));
  for (const r of [v12!, v20!]) expect(r).toEqual({ text: "", closed: false });
  expect(heads).toHaveLength(0);
});

test("an absolute-form request line (RFC 9112 §3.2.2: a server MUST accept it) gets no answer", async () => {
  heads.length = 0;
  const r = await rawRequest(router.port, `GET http://${host}/absolute HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 1500);
  expect(r).toEqual({ text: "", closed: false });
  expect(heads).toHaveLength(0);
});

test("a request with more than 48 header lines gets no answer (uWS keeps 50 slots, the request line and the end take two)", async () => {
  const lines = (n: number) => `GET /many-headers HTTP/1.1\r\nHost: ${host}\r\n${Array.from({ length: n - 1 }, (_, i) => `X-H${i}: v\r\n`).join("")}Connection: close\r\n\r\n`;
  expect((await rawRequest(router.port, lines(47), 1500)).text).toStartWith("HTTP/1.1 200"); // 47 + Connection = 48
  expect(await rawRequest(router.port, lines(48), 1500)).toEqual({ text: "", closed: false });
});

test("HTTP/1.0 from nginx: its default proxy_pass gets no answer (nginx would answer 504 after proxy_read_timeout, 60 s); with proxy_http_version 1.1, 200", async () => {
  const behind = { routers: [router, router], dir };
  const naive = await startFrontEnd(behind, "nginx-defaults");
  const tested = await startFrontEnd(behind, "nginx");
  try {
    const r = await rawRequest(naive.port, `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 3000);
    expect(r).toEqual({ text: "", closed: false });
    expect((await fetch(`${tested.url}/`, { headers: { host } })).status).toBe(200);
  } finally {
    await Promise.all([naive.process.stop("SIGKILL"), tested.process.stop("SIGKILL")]);
  }
});

test("Transfer-Encoding: xchunked is handed to the router (uWS reads the body as chunked): the router answers 501 itself (issue 16)", async () => {
  heads.length = 0;
  const r = await rawRequest(router.port, `POST / HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 1500);
  expect(r.text).toStartWith("HTTP/1.1 501");
  expect(r.closed).toBe(true);
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

test("an idle keep-alive connection is closed by uWS 8-12 s after its last response, on its timer's 4 s tick (load balancers must close theirs sooner)", async () => {
  const { idleMs } = await idle;
  expect(idleMs).toBeGreaterThan(7_900);
  expect(idleMs).toBeLessThan(12_500);
}, 20_000);
