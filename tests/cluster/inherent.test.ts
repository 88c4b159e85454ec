// The inherent-failure classifier of the cluster scenarios (issue 10), on access-log lines written by
// the router's own AccessLog, so a change of the log format breaks this test and not a 2-minute run.

import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AccessLog, type AccessRecord } from "../../router/src/status/access-log.ts";
import { inherentFailures, parseAccessLog, type Fault } from "./inherent.ts";
import type { RequestFailure } from "./load.ts";

const record = (target: string, status: number, endpoint: string | undefined, routerError = ""): AccessRecord =>
  ({
    host: "hello.skiff.test", method: "GET", target, status, requestBytes: 0, responseBytes: 10, userAgent: "Bun", referer: "", remoteAddress: "198.18.1.50",
    forwardedFor: "", forwardedProto: "", endpoint: endpoint ? { key: endpoint, appId: "app", instanceIndex: "0", instanceId: "i" } : undefined,
    requestId: "r", startedAtMs: Date.now(), routerError,
  }) as AccessRecord;

async function logOf(records: AccessRecord[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "skiff-inherent-"));
  try {
    const log = await AccessLog.open(join(dir, "a.log"));
    for (const r of records) log.record(r);
    await log.close();
    return readFileSync(join(dir, "a.log"), "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fail = (target: string, at: number, end: number, status = 502, routerError = "endpoint_failure"): RequestFailure => ({ target, at, end, status, routerError });
const killed = "198.18.1.31:61001";
const fault: Fault = { at: 1000, done: 1002, hits: (e) => e === killed, status: 502, routerError: "endpoint_failure", graceMs: 50 };

test("the router's access-log lines parse: target, status, endpoint, router error (issue 10)", async () => {
  const { lines, unparsed } = parseAccessLog(await logOf([record("/?load=1", 200, killed), record("/?load=2", 502, killed, "endpoint_failure"), record("/?load=3", 503, undefined, "no_endpoints")]));
  expect(unparsed).toBe(0);
  expect(lines).toEqual([
    { target: "/?load=1", status: 200, endpoint: killed, routerError: "" },
    { target: "/?load=2", status: 502, endpoint: killed, routerError: "endpoint_failure" },
    { target: "/?load=3", status: 503, endpoint: "-", routerError: "no_endpoints" },
  ]);
});

test("a 502 is inherent only if it went to the killed instance and was in flight at the kill (issue 10)", async () => {
  const { lines } = parseAccessLog(await logOf([
    record("/?load=1", 502, killed, "endpoint_failure"), // in flight at the kill: inherent
    record("/?load=2", 502, killed, "endpoint_failure"), // sent 30 ms after: still inherent (grace)
    record("/?load=3", 502, "198.18.1.32:61001", "endpoint_failure"), // another instance: a retry that failed
    record("/?load=4", 502, killed, "endpoint_failure"), // sent 500 ms after the kill: the router should have retried
    record("/?load=5", 502, killed, "endpoint_failure"), // ended before the kill
    record("/?load=6", 504, killed, "endpoint_timeout"), // another answer
  ]));
  const failures = [fail("/?load=1", 990, 1003), fail("/?load=2", 1032, 1040), fail("/?load=3", 995, 1010), fail("/?load=4", 1500, 1502), fail("/?load=5", 900, 950), fail("/?load=6", 999, 11_000, 504, "endpoint_timeout"), fail("/?load=7", 999, 1010)];
  expect(inherentFailures(failures, lines, fault).map((f) => f.target)).toEqual(["/?load=1", "/?load=2"]);
});
