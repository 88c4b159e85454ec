// The access log through the real router process (issue 5): SKIFF_ROUTER_ACCESS_LOG names a file, and
// each request leaves one line in gorouter's format with the fields filled from that request.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import type { Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "../support/ports.ts";
import { metricsText, rawBackend, rawRequest, startHarness, startRouter, stopSuite, waitForStatus, type Harness, type RunningRouter } from "./router-harness.ts";

let h: Harness;
let router: RunningRouter;
const servers: NetServer[] = [];
const dir = mkdtempSync(join(tmpdir(), "skiff-router-access-"));
const file = join(dir, "access.log");

beforeAll(async () => {
  h = await startHarness();
  router = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_ACCESS_LOG: file });
}, 60_000);

afterAll(async () => {
  await stopSuite(h, servers);
  rmSync(dir, { recursive: true, force: true });
});

const lineWith = (needle: string) =>
  eventually(() => (existsSync(file) ? readFileSync(file, "utf8").split("\n").find((l) => l.includes(needle)) : undefined), 5000, `an access log line with ${needle}`);

test("a proxied POST's line: host, request line, status, bytes received and sent, referer, user agent, addresses, forwarded headers, request id, app fields (issue 5)", async () => {
  let requestId = "";
  const b = await rawBackend(servers, (s, head, rest) => {
    requestId = /x-vcap-request-id: (\S+)/i.exec(head)?.[1] ?? "";
    const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
    let got = rest.length;
    const answer = () => s.write("HTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\ncreated");
    if (got >= len) return answer();
    s.removeAllListeners("data");
    s.on("data", (d: Buffer) => {
      got += d.length;
      if (got >= len) answer();
    });
  });
  await h.register({ port: b.port, uris: ["log.skiff.localhost"], app: "log-app", private_instance_id: "log-inst", private_instance_index: "2" });
  await waitForStatus(router.url, "log.skiff.localhost", 201);
  const r = await rawRequest(
    router.port,
    "POST /things?x=1 HTTP/1.1\r\nHost: log.skiff.localhost\r\nUser-Agent: access-test/1.0\r\nReferer: http://ref.example/\r\n" +
      "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nContent-Length: 11\r\n\r\nhello world",
    1000,
  );
  expect(r.text).toStartWith("HTTP/1.1 201");
  const line = await lineWith("/things?x=1");
  // every tenant's requests are in it: the platform's alone (issue 24)
  expect((statSync(file).mode & 0o777).toString(8)).toBe("600");
  expect(line).toMatch(/^log\.skiff\.localhost - \[\d{4}-\d\d-\d\dT[\d:.]+Z\] "POST \/things\?x=1 HTTP\/1\.1" 201 11 7 /);
  expect(line).toContain(`"http://ref.example/" "access-test/1.0" "127.0.0.1" "127.0.0.1:${b.port}"`);
  // as forwarded: the client's X-Forwarded-For with its address appended; its X-Forwarded-Proto is not
  // believed from a peer outside SKIFF_ROUTER_TRUSTED_PROXIES, so the scheme it spoke (issue 24)
  expect(line).toContain('x_forwarded_for:"203.0.113.9, 127.0.0.1" x_forwarded_proto:"http"');
  expect(requestId).not.toBe("");
  expect(line).toContain(`vcap_request_id:"${requestId}"`);
  expect(line).toMatch(/response_time:\d+\.\d{6} /);
  expect(line).toEndWith('app_id:"log-app" app_index:"2" instance_id:"log-inst" x_cf_routererror:"-"');
});

test("the router's own errors are logged too, with the scheme as x_forwarded_proto and the X-Cf-Routererror code", async () => {
  const res = await fetch(`${router.url}/missing`, { headers: { host: "nolog.skiff.localhost" } });
  expect(res.status).toBe(404);
  const line = await lineWith("nolog.skiff.localhost");
  expect(line).toContain('"GET /missing HTTP/1.1" 404 0 ');
  expect(line).toContain('"127.0.0.1" "-" x_forwarded_for:"127.0.0.1" x_forwarded_proto:"http"');
  expect(line).toEndWith('app_id:"-" app_index:"-" instance_id:"-" x_cf_routererror:"unknown_route"');
  const metrics = await metricsText(router);
  expect(metrics).toContain("skiff_router_access_log_dropped_total 0");
});
