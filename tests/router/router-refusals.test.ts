// The requests stage 3 refuses with a status of its own against the real router process (issue 16
// item 4, issue 26): an unknown transfer coding is answered 501, a malformed Transfer-Encoding or two
// Host lines 400, each with Connection: close and never forwarded; the requests uWS 20.30 hands over
// and then closes by itself are never forwarded either, and /metrics counts each by cause.

import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Server as NetServer } from "node:net";
import { metricsText, rawBackend, rawRequest, startHarness, startRouter, stopSuite, waitForStatus, type Harness, type RunningRouter } from "./router-harness.ts";

let h: Harness;
let router: RunningRouter;
const servers: NetServer[] = [];
const heads: string[] = [];
const host = "refusals.skiff.localhost";

beforeAll(async () => {
  h = await startHarness();
  router = await startRouter(h.bundle, h.nats);
  const b = await rawBackend(servers, (s, head) => {
    heads.push(head);
    s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  await h.register({ port: b.port, uris: [host] });
  await waitForStatus(router.url, host, 200);
}, 60_000);

afterAll(() => stopSuite(h, servers));

const post = (te: string) => `POST /te HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: ${te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`;

/** The status line, the X-Cf-Routererror and whether the response asked to close, of a raw answer. */
function answer(text: string): { status: string; code: string; close: boolean } {
  const head = text.slice(0, text.indexOf("\r\n\r\n")).toLowerCase();
  return { status: text.slice(9, 12), code: /x-cf-routererror: (\S+)/.exec(head)?.[1] ?? "", close: /\r\nconnection: close/.test(head) };
}

async function counter(name: string, cause: string): Promise<number> {
  const m = new RegExp(`^${name}\\{cause="${cause}"\\} (\\d+)$`, "m").exec(await metricsText(router));
  return m ? Number(m[1]) : 0;
}

test("Transfer-Encoding: xchunked is answered 501 with Connection: close and never forwarded (issue 16 item 4)", async () => {
  heads.length = 0;
  const before = await counter("skiff_router_refused_requests_total", "unknown_transfer_coding");
  const r = await rawRequest(router.port, post("xchunked"), 2000);
  expect(answer(r.text)).toEqual({ status: "501", code: "unknown_transfer_coding", close: true });
  expect(r.closed).toBe(true);
  for (const te of ["gzip, chunked", "chunked, gzip", "identity"]) {
    const other = await rawRequest(router.port, post(te), 2000);
    expect(answer(other.text).status).toBe("501");
  }
  expect(await counter("skiff_router_refused_requests_total", "unknown_transfer_coding")).toBe(before + 4);
  await Bun.sleep(100);
  expect(heads).toHaveLength(0);
});

test("chunked twice is a malformed Transfer-Encoding: 400, the connection closed, nothing forwarded", async () => {
  heads.length = 0;
  for (const te of ["chunked, chunked", "chunked\r\nTransfer-Encoding: chunked"]) {
    const r = await rawRequest(router.port, post(te), 2000);
    expect(answer(r.text)).toEqual({ status: "400", code: "invalid_transfer_encoding", close: true });
    expect(r.closed).toBe(true);
  }
  expect(await counter("skiff_router_refused_requests_total", "invalid_transfer_encoding")).toBeGreaterThanOrEqual(2);
  expect(heads).toHaveLength(0);
  // plain chunked still goes through
  const ok = await rawRequest(router.port, post("chunked").replace("Transfer-Encoding", "Connection: close\r\nTransfer-Encoding"), 2000);
  expect(answer(ok.text).status).toBe("200");
  expect(heads.filter((hd) => hd.startsWith("POST /te "))).toHaveLength(1); // (the naive backend reads the chunks as a second head)
});

test("two different Host lines: 400 duplicate_host, never routed by either", async () => {
  heads.length = 0;
  const r = await rawRequest(router.port, `GET / HTTP/1.1\r\nHost: other.skiff.localhost\r\nHost: ${host}\r\n\r\n`, 2000);
  expect(answer(r.text)).toEqual({ status: "400", code: "duplicate_host", close: true });
  expect(r.closed).toBe(true);
  expect(await counter("skiff_router_refused_requests_total", "duplicate_host")).toBe(1);
  expect(heads).toHaveLength(0);
});

test("a Content-Length uWS closes on after the handler (not digits, or 10+ digits): no answer can leave, nothing is forwarded, /metrics counts it", async () => {
  heads.length = 0;
  for (const cl of ["abc", "+5", "1000000000"]) {
    const r = await rawRequest(router.port, `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${cl}\r\n\r\nhello`, 2000);
    expect(r.text).toBe("");
    expect(r.closed).toBe(true);
  }
  await Bun.sleep(100);
  expect(heads).toHaveLength(0);
  expect(await counter("skiff_router_engine_closed_total", "content_length_not_digits")).toBe(2);
  expect(await counter("skiff_router_engine_closed_total", "content_length_over_9_digits")).toBe(1);
});

test("a request uWS aborts because another was pipelined behind it is counted as closed before an answer", async () => {
  const read = async () => Number(/^skiff_router_closed_before_answer_total (\d+)$/m.exec(await metricsText(router))?.[1] ?? NaN);
  const before = await read();
  const one = `GET /first HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  // the backend answers at once here, so the first may be answered before the second is parsed: send
  // the pair until uWS aborts one (it does when the second arrives while the first waits upstream)
  let aborted = 0;
  for (let i = 0; i < 20 && aborted === 0; i++) {
    const r = await rawRequest(router.port, one + one, 1000);
    if (r.text === "") aborted++;
  }
  expect(aborted).toBe(1);
  expect(await read()).toBeGreaterThan(before);
});
