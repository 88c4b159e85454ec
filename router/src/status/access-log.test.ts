import { expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AccessLog, formatAccessLine, type AccessRecord } from "./access-log.ts";

const record = (over: Partial<AccessRecord> = {}): AccessRecord => ({
  host: "app.example.com",
  method: "GET",
  target: "/x?y=1",
  status: 200,
  requestBytes: 0,
  responseBytes: 5,
  userAgent: 'curl "quoted"',
  referer: "",
  remoteAddress: "10.0.0.9",
  forwardedFor: "",
  forwardedProto: "",
  endpoint: { key: "10.0.0.1:61001", appId: "guid", instanceIndex: "0", instanceId: "inst" },
  requestId: "req-1",
  startedAtMs: Date.UTC(2026, 0, 1),
  routerError: "",
  ...over,
});

test("lines in gorouter's shape, written in the background", async () => {
  const dir = mkdtempSync(join(tmpdir(), "skiff-access-"));
  try {
    const log = await AccessLog.open(join(dir, "access.log"));
    log.record(record());
    log.record(record({ status: 404, endpoint: undefined, routerError: "unknown_route" }));
    await log.close();
    const lines = readFileSync(join(dir, "access.log"), "utf8").trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toStartWith('app.example.com - [2026-01-01T00:00:00.000Z] "GET /x?y=1 HTTP/1.1" 200 0 5 "-" "curl _quoted_" "10.0.0.9" "10.0.0.1:61001" x_forwarded_for:"10.0.0.9" x_forwarded_proto:"http" vcap_request_id:"req-1"');
    expect(lines[0]).toContain('app_id:"guid" app_index:"0" instance_id:"inst" x_cf_routererror:"-"');
    expect(lines[1]).toContain('x_cf_routererror:"unknown_route"');
    expect(log.written).toBe(2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bytes received, X-Forwarded-For as forwarded and X-Forwarded-Proto as sent, or the scheme (issue 5)", () => {
  const t = Date.UTC(2026, 0, 1);
  const line = formatAccessLine(record({ method: "POST", requestBytes: 1234, forwardedFor: "203.0.113.7", forwardedProto: "https" }), "http", t + 1500);
  expect(line).toContain('"POST /x?y=1 HTTP/1.1" 200 1234 5 ');
  expect(line).toContain('x_forwarded_for:"203.0.113.7, 10.0.0.9" x_forwarded_proto:"https"');
  expect(line).toContain("response_time:1.500000 ");
  expect(formatAccessLine(record(), "https", t)).toContain('x_forwarded_proto:"https"');
});

test("a reader that stops reading never stalls record(): lines past the buffer are dropped and counted, the rest arrive whole (issue 5)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "skiff-access-fifo-"));
  const fifo = join(dir, "pipe");
  execFileSync("mkfifo", [fifo]);
  // a reader that exists (so opening for writing does not block) but reads nothing yet
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const log = await AccessLog.open(fifo);
    const total = 20_000; // ~4.5 MB of lines: over the 4 MiB buffer plus the 64 KiB pipe
    const ua = "u".repeat(100);
    const t0 = performance.now();
    for (let i = 0; i < total; i++) log.record(record({ requestId: `req-${i}`, userAgent: ua }));
    expect(performance.now() - t0).toBeLessThan(2000); // no write on the event loop
    await Bun.sleep(300);
    expect(log.dropped).toBeGreaterThan(0);
    // the reader catches up: what was not dropped arrives as whole lines
    let text = "";
    const buf = Buffer.alloc(1 << 16);
    let closed = false;
    const closing = log.close(10_000).then(() => (closed = true));
    const deadline = Date.now() + 15_000;
    for (let wasClosed = false; Date.now() < deadline; ) {
      let n = 0;
      try {
        n = readSync(reader, buf, 0, buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      }
      if (n > 0) {
        text += buf.toString("latin1", 0, n);
        continue;
      }
      if (wasClosed) break; // the writer is done and the pipe is empty
      wasClosed = closed;
      await Bun.sleep(5);
    }
    await closing;
    const lines = text.split("\n").filter(Boolean);
    expect(lines.length).toBe(log.written);
    expect(lines.length + log.dropped).toBe(total);
    for (const l of lines) expect(l).toMatch(/^app\.example\.com - \[.*x_cf_routererror:"-"$/);
  } finally {
    closeSync(reader);
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
