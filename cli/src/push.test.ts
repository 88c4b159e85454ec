// How `skiff push` reads its arguments (issue 17): cf's `push NAME [-p PATH]`, and the old folder form
// where it cannot be a name.

import { describe, expect, test } from "bun:test";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pushTarget } from "./push.ts";

describe("push NAME [-p PATH] (issue 17)", () => {
  test("the first word is the app's name, as in cf push", () => {
    expect(pushTarget(["myapp"], { path: "./dir" })).toEqual({ name: "myapp", dir: "./dir", hint: undefined });
    expect(pushTarget(["myapp"], {})).toEqual({ name: "myapp", dir: undefined, hint: undefined });
    expect(pushTarget([], { name: "x", path: "d" })).toEqual({ name: "x", dir: "d" });
  });
  test("a path with a slash, . or .. is the folder (the old form), never a name", () => {
    expect(pushTarget(["examples/hello"], {})).toEqual({ name: undefined, dir: "examples/hello" });
    expect(pushTarget(["/abs/app"], { name: "n" })).toEqual({ name: "n", dir: "/abs/app" });
    expect(pushTarget(["."], {})).toEqual({ name: undefined, dir: "." });
  });
  test("two names, two folders or extra words are usage errors (exit 2)", () => {
    expect(() => pushTarget(["a"], { name: "b" })).toThrow(expect.objectContaining({ exitCode: 2 }));
    expect(() => pushTarget(["./a"], { path: "./b" })).toThrow(/folder once/);
    expect(() => pushTarget(["a", "b"], {})).toThrow(/one app name/);
  });
  test("a name that is also a folder here pushes the current folder, and says how to push that one", () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-push-args-"));
    const cwd = process.cwd();
    try {
      mkdirSync(join(dir, "shop"));
      process.chdir(dir);
      expect(pushTarget(["shop"], {}).hint).toMatch(/skiff push shop -p \.\/shop/);
      expect(pushTarget(["shop"], { path: "." }).hint).toBeUndefined();
    } finally {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
