// Safety properties of the request path against the real router process (issue 5): no request
// smuggled past stage 3, no retry once a byte reached an instance, bounded attempts and timeouts,
// the per-instance connection cap, sticky sessions and least-connection end to end.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Server as NetServer } from "node:net";
import { Subjects, type RouterRegister } from "../../bus/index.ts";
import { eventually } from "../support/ports.ts";
import { stopAllProcesses } from "../support/processes.ts";
import { rawBackend, rawRequest, startHarness, startRouter, waitForStatus, type Harness, type RunningRouter } from "./router-harness.ts";

let h: Harness;
let router: RunningRouter;
const servers: NetServer[] = [];

beforeAll(async () => {
  h = await startHarness();
  router = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_MAX_HEADER_BYTES: "2048", SKIFF_ROUTER_MAX_BODY_BYTES: "1000" });
}, 60_000);

afterAll(async () => {
  await stopAllProcesses();
  for (const s of servers) s.close();
  await h?.stop();
});

async function register(msg: Partial<RouterRegister> & { port: number; uris: string[] }): Promise<void> {
  h.bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", ...msg });
  await h.bus.flush();
}

/** A backend that answers "ok" to every request and remembers each request head. */
async function okBackend(): Promise<{ port: number; heads: string[] }> {
  const heads: string[] = [];
  const b = await rawBackend(servers, (s, head) => {
    heads.push(head);
    s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  return { port: b.port, heads };
}

describe("reject-hostile closes the connection (issue 5)", () => {
  let backend: { port: number; heads: string[] };
  const host = "smuggle.skiff.localhost";
  const smuggled = `GET /smuggled HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

  beforeAll(async () => {
    backend = await okBackend();
    await register({ port: backend.port, uris: [host] });
    await waitForStatus(router.url, host, 200);
  });

  test("Content-Length: 0 then Content-Length: N: the connection closes and the body never reaches the backend as a request (issue 5)", async () => {
    backend.heads.length = 0;
    // in one write, as a smuggler sends it: uWS aborts the connection (no answer) rather than serve what follows
    const r = await rawRequest(router.port, `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`, 2000);
    expect(r.closed).toBe(true);
    expect(r.text).not.toContain(" 200 ");
    await Bun.sleep(100);
    expect(backend.heads.some((hd) => hd.includes("/smuggled"))).toBe(false);
  });

  test("the same with the smuggled bytes in a later write: 400, then the connection closes (issue 5)", async () => {
    backend.heads.length = 0;
    const socket = connect(router.port, "127.0.0.1");
    let text = "";
    let closed = false;
    socket.on("data", (d) => (text += d.toString("latin1")));
    socket.on("error", () => {});
    socket.on("close", () => (closed = true));
    socket.write(`POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n`);
    await eventually(() => (text.includes("\r\n\r\n") ? true : undefined), 3000, "the 400");
    if (!socket.destroyed) socket.write(smuggled);
    await eventually(() => (closed ? true : undefined), 3000, "the router to close the connection");
    expect(text).toStartWith("HTTP/1.1 400");
    expect(text.toLowerCase()).toContain("x-cf-routererror: invalid_request");
    expect(text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    await Bun.sleep(100);
    expect(backend.heads).toHaveLength(0);
  });

  test("431 and 413 close the connection too; nothing behind them is served (issue 5)", async () => {
    backend.heads.length = 0;
    const tooBig = await rawRequest(router.port, `GET / HTTP/1.1\r\nHost: ${host}\r\nX-Big: ${"a".repeat(2100)}\r\n\r\n`, 2000);
    expect(tooBig.text).toStartWith("HTTP/1.1 431");
    expect(tooBig.closed).toBe(true);
    const tooLong = await rawRequest(router.port, `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 1001\r\n\r\n`, 2000);
    expect(tooLong.text).toStartWith("HTTP/1.1 413");
    expect(tooLong.closed).toBe(true);
    const pipelined = await rawRequest(router.port, `GET / HTTP/1.1\r\nHost: ${host}\r\nX-Big: ${"a".repeat(2100)}\r\n\r\n${smuggled}`, 2000);
    expect(pipelined.closed).toBe(true);
    expect(pipelined.text).not.toContain(" 200 ");
    await Bun.sleep(100);
    expect(backend.heads).toHaveLength(0);
  });
});
