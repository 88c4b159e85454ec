// The platform's files are its own: made private, tightened when an older version left them open,
// refused when they cannot be made private (issue 24).

import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkStateDir, InsecureStateError, modeOf, openPrivateState, PRIVATE_UMASK, privateDir, tightenTree, traverseOnlyDir, writePrivateFile } from "./private-state.ts";

const base = mkdtempSync(join(tmpdir(), "skiff-private-"));
const originalUmask = process.umask();
afterEach(() => void process.umask(originalUmask));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const fresh = (name: string) => join(base, name);
const isRoot = process.getuid?.() === 0;

describe("private state (issue 24)", () => {
  test("after openPrivateState, what a component writes is 0600 in 0700 folders, whatever the umask was", () => {
    process.umask(0o022);
    const dir = fresh("component");
    openPrivateState(dir, "test dir");
    expect(process.umask()).toBe(PRIVATE_UMASK);
    writeFileSync(join(dir, "db.sqlite"), "secret");
    mkdirSync(join(dir, "blobs", "ab"), { recursive: true });
    writeFileSync(join(dir, "blobs", "ab", "blob"), "bytes");
    expect(modeOf(dir)).toBe("700");
    expect(modeOf(join(dir, "db.sqlite"))).toBe("600");
    expect(modeOf(join(dir, "blobs"))).toBe("700");
    expect(modeOf(join(dir, "blobs", "ab", "blob"))).toBe("600");
  });

  test("files an older version left readable are tightened at start, and links are not followed", () => {
    process.umask(0o022);
    const dir = fresh("old");
    mkdirSync(join(dir, "blobs", "ab"), { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    for (const f of ["controller.sqlite", "controller.sqlite-wal", "blobs/ab/pkg"]) writeFileSync(join(dir, f), "x", { mode: 0o644 });
    chmodSync(join(dir, "blobs", "ab", "pkg"), 0o755);
    const outside = fresh("outside-file");
    writeFileSync(outside, "not ours", { mode: 0o644 });
    symlinkSync(outside, join(dir, "link"));
    const tightened = privateDir(dir, "test dir");
    expect(tightened).toBe(6); // dir, blobs, blobs/ab, two sqlite files, pkg
    expect(modeOf(dir)).toBe("700");
    expect(modeOf(join(dir, "controller.sqlite"))).toBe("600");
    expect(modeOf(join(dir, "controller.sqlite-wal"))).toBe("600");
    expect(modeOf(join(dir, "blobs", "ab"))).toBe("700");
    expect(modeOf(join(dir, "blobs", "ab", "pkg"))).toBe("700"); // the owner's execute bit is kept
    expect(modeOf(outside)).toBe("644");
    expect(privateDir(dir, "test dir")).toBe(0); // nothing left to do
  });

  test("tightenTree spares the top-level entries it is told other uids own", () => {
    const dir = fresh("agent");
    mkdirSync(join(dir, "instances", "i1"), { recursive: true });
    mkdirSync(join(dir, "records"), { recursive: true });
    chmodSync(join(dir, "instances", "i1"), 0o755);
    chmodSync(join(dir, "records"), 0o755);
    writeFileSync(join(dir, "agent-id"), "a", { mode: 0o644 });
    chmodSync(join(dir, "agent-id"), 0o644);
    tightenTree(dir, ["instances"]);
    expect(modeOf(join(dir, "instances", "i1"))).toBe("755");
    expect(modeOf(join(dir, "records"))).toBe("700");
    expect(modeOf(join(dir, "agent-id"))).toBe("600");
  });

  test("a traverse-only folder lets others pass but not list", () => {
    process.umask(0o077);
    const dir = fresh("through");
    traverseOnlyDir(dir, "test dir");
    expect(modeOf(dir)).toBe("711");
    chmodSync(dir, 0o755);
    traverseOnlyDir(dir, "test dir");
    expect(modeOf(dir)).toBe("711");
  });

  test("writePrivateFile writes 0600 even under an open umask, and replaces atomically", () => {
    process.umask(0);
    const file = join(fresh("files"), "secret");
    writePrivateFile(file, "one");
    expect(modeOf(file)).toBe("600");
    writePrivateFile(file, "two");
    expect(Bun.file(file).size).toBe(3);
    expect(modeOf(file)).toBe("600");
  });

  test("a state folder under a folder anyone may write (no sticky bit) is refused, with the fix", () => {
    const open = fresh("world-writable");
    mkdirSync(open);
    chmodSync(open, 0o777);
    const err = (() => {
      try {
        privateDir(join(open, "state"), "the test's state");
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(InsecureStateError);
    expect(err!.message).toContain("chmod go-w");
    // the sticky bit (as /tmp has) makes it safe: others cannot move our folder aside
    chmodSync(open, 0o1777);
    expect(() => privateDir(join(open, "state"), "the test's state")).not.toThrow();
  });

  test("a setting that points at a checkout, a home or / is refused before anything is tightened", () => {
    const checkout = fresh("checkout");
    mkdirSync(join(checkout, ".git"), { recursive: true });
    writeFileSync(join(checkout, "README.md"), "x", { mode: 0o644 });
    chmodSync(join(checkout, "README.md"), 0o644);
    expect(() => privateDir(checkout, "the data dir")).toThrow(/holds \.git: it looks like a project/);
    expect(modeOf(join(checkout, "README.md"))).toBe("644");
    expect(() => checkStateDir("/", "the data dir")).toThrow(InsecureStateError);
  });

  test.if(isRoot)("a state folder owned by another uid is refused", () => {
    const dir = fresh("theirs");
    mkdirSync(dir);
    chownSync(dir, 54321, 54321);
    expect(() => checkStateDir(dir, "the test's state")).toThrow(/belongs to uid 54321/);
    expect(() => privateDir(dir, "the test's state")).toThrow(InsecureStateError);
  });
});
