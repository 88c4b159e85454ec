import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unreachableAncestor } from "./run-as.ts";

const root = mkdtempSync(join(tmpdir(), "skiff-runas-")); // mkdtemp makes it 0700
afterAll(() => rmSync(root, { recursive: true, force: true }));
const nobody = { name: "nobody", uid: 65534, gid: 65534 };

test("finds the first directory another user cannot enter (the e2e 126 'Permission denied' crash)", () => {
  const deep = join(root, "agent", "instances");
  mkdirSync(deep, { recursive: true });
  chmodSync(root, 0o700);
  expect(unreachableAncestor(deep, nobody)).toBe(root);
  chmodSync(root, 0o711);
  expect(unreachableAncestor(deep, nobody)).toBeUndefined();
});

test("the owner's own bits count for the owner", () => {
  const me = { name: "me", uid: process.getuid!(), gid: process.getgid!() };
  chmodSync(root, 0o700);
  expect(unreachableAncestor(root, me)).toBeUndefined();
});
