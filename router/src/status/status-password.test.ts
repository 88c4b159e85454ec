import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { statusPassword, StatusPasswordError } from "./status-password.ts";

const dir = mkdtempSync(join(tmpdir(), "skiff-status-pass-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the operator's SKIFF_ROUTER_STATUS_PASS wins; no file is made (issue 24)", () => {
  const file = join(dir, "unused", "pass");
  expect(statusPassword("s3cret", file)).toEqual({ pass: "s3cret", from: "env" });
  expect(statSync(file, { throwIfNoEntry: false })).toBeUndefined();
});

test("otherwise generated into a 0600 file in a 0700 folder, and read back on the next start (issue 24)", () => {
  const file = join(dir, "router", "status-password");
  const first = statusPassword(undefined, file);
  expect(first.from).toBe("generated");
  expect(first.pass.length).toBeGreaterThanOrEqual(24);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(statSync(join(dir, "router")).mode & 0o777).toBe(0o700);
  expect(readFileSync(file, "utf8").trim()).toBe(first.pass);
  const again = statusPassword(undefined, file);
  expect(again).toEqual({ pass: first.pass, from: "file", file });
  expect(statusPassword("", file).pass).toBe(first.pass);
});

test("a kept file others may read, or an empty one, is refused with what to do", () => {
  const open = join(dir, "open");
  writeFileSync(open, "pw\n");
  chmodSync(open, 0o644);
  expect(() => statusPassword(undefined, open)).toThrow(StatusPasswordError);
  expect(() => statusPassword(undefined, open)).toThrow(/chmod 600/);
  const empty = join(dir, "empty");
  writeFileSync(empty, "\n", { mode: 0o600 });
  expect(() => statusPassword(undefined, empty)).toThrow(/is empty/);
  const operators = join(dir, "operators");
  writeFileSync(operators, "chosen\n", { mode: 0o600 });
  expect(statusPassword(undefined, operators)).toEqual({ pass: "chosen", from: "file", file: operators });
});
