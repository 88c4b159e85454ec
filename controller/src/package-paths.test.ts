import { describe, expect, test } from "bun:test";
import { escapesAppDirectory, symlinkEscapesAppDirectory } from "./package-paths.ts";

describe("package paths", () => {
  test("a path escapes when absolute, on a drive, with a NUL, or with .. above the top", () => {
    for (const p of ["/etc/passwd", "C:/x", "c:x", "a\0b", "..", "../x", "a/../../x", "./a/../.."]) expect(escapesAppDirectory(p), p).toBe(true);
    for (const p of ["a", "./a/b", "a/../b", "a//b/./c", "a/b/../../c", "..."]) expect(escapesAppDirectory(p), p).toBe(false);
  });

  test("a symlink is judged from the directory that holds it", () => {
    expect(symlinkEscapesAppDirectory("a/l", "../x")).toBe(false);
    expect(symlinkEscapesAppDirectory("a/l", "../../x")).toBe(true);
    expect(symlinkEscapesAppDirectory("./a/b/l", "../../x")).toBe(false);
    expect(symlinkEscapesAppDirectory("a/l", "/etc")).toBe(true);
    expect(symlinkEscapesAppDirectory("a/l", "x\0")).toBe(true);
  });

  test("a relative symlink at the top of the package stays inside (issue 7)", () => {
    // it was joined as "/target", which reads as absolute: `tar -C app .` packages with a link beside
    // index.js were refused as pointing outside
    expect(symlinkEscapesAppDirectory("l", "lib/x.js")).toBe(false);
    expect(symlinkEscapesAppDirectory("./l", "lib/x.js")).toBe(false);
    expect(symlinkEscapesAppDirectory("./l", "..")).toBe(true);
    expect(symlinkEscapesAppDirectory("l", "C:x")).toBe(true);
  });
});
