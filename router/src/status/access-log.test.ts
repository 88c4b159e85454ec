import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AccessLog, type AccessRecord } from "./access-log.ts";

const record = (over: Partial<AccessRecord> = {}): AccessRecord => ({
  host: "app.example.com",
  method: "GET",
  target: "/x?y=1",
  status: 200,
  responseBytes: 5,
  userAgent: 'curl "quoted"',
  referer: "",
  remoteAddress: "10.0.0.9",
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
    expect(lines[0]).toStartWith('app.example.com - [2026-01-01T00:00:00.000Z] "GET /x?y=1 HTTP/1.1" 200 0 5 "-" "curl _quoted_" "10.0.0.9" "10.0.0.1:61001"');
    expect(lines[0]).toContain('app_id:"guid" app_index:"0" instance_id:"inst" x_cf_routererror:"-"');
    expect(lines[1]).toContain('x_cf_routererror:"unknown_route"');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
