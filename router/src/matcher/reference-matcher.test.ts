import { describe, expect, test } from "bun:test";
import { ReferenceMatcher } from "./reference-matcher.ts";
import { normaliseHost, parseRequest, parseRouteUri, wildcardFallbacks } from "./route-key.ts";

describe("route keys", () => {
  test("hosts are lower-cased, lose their port and one trailing dot", () => {
    expect(normaliseHost("App.Example.COM:8080", false)).toBe("app.example.com");
    expect(normaliseHost("app.example.com.", false)).toBe("app.example.com");
    expect(normaliseHost("app.example.com.:443", false)).toBe("app.example.com");
    expect(normaliseHost("[::1]:8080", false)).toBe("[::1]");
    expect(normaliseHost("localhost:", false)).toBe("localhost");
  });

  test("bad hosts are refused", () => {
    for (const bad of ["", ".", "a..b", ".a", "a..", "a b", "a/b", "a?b", "a#b", "a\\b", "a:x", "[::1", "é.com"]) {
      expect(normaliseHost(bad, true)).toBeNull();
    }
    expect(normaliseHost(`${"a".repeat(250)}.com`, false)).toBeNull();
    expect(normaliseHost(`${"a".repeat(249)}.com`, false)).toBe(`${"a".repeat(249)}.com`);
  });

  test("a wildcard is only a whole leftmost label of a registered key", () => {
    expect(normaliseHost("*.example.com", true)).toBe("*.example.com");
    expect(normaliseHost("*.com", true)).toBe("*.com");
    expect(normaliseHost("*.example.com", false)).toBeNull();
    for (const bad of ["*", "*.", "a*.com", "a.*.com", "*.*.com", "**.com"]) expect(normaliseHost(bad, true)).toBeNull();
  });

  test("registered paths: lower-cased, query cut, trailing slashes dropped, empty segments kept", () => {
    expect(parseRouteUri("App.com/API/v1/?x=1")).toEqual({ host: "app.com", segments: ["api", "v1"], canonical: "app.com/api/v1" });
    expect(parseRouteUri("app.com/")?.segments).toEqual([]);
    expect(parseRouteUri("app.com?q")?.canonical).toBe("app.com");
    expect(parseRouteUri("app.com/a//b")?.segments).toEqual(["a", "", "b"]);
    expect(parseRouteUri("app.com/%2F/..")?.segments).toEqual(["%2f", ".."]);
    expect(parseRouteUri(`app.com/${"x".repeat(4095)}`)).not.toBeNull();
    expect(parseRouteUri(`app.com/${"x".repeat(4096)}`)).toBeNull();
  });

  test("request targets", () => {
    expect(parseRequest("a.com", "/Api/x?y=/z#f")).toEqual({ host: "a.com", segments: ["api", "x"], ends: [4, 6] });
    expect(parseRequest("a.com", "*")?.segments).toEqual([]);
    expect(parseRequest("a.com", "")?.segments).toEqual([]);
    expect(parseRequest("*.a.com", "/")).toBeNull();
  });

  test("wildcard fallbacks go leftmost label first and never reach a bare star", () => {
    expect(wildcardFallbacks("a.b.c")).toEqual(["*.b.c", "*.c"]);
    expect(wildcardFallbacks("localhost")).toEqual([]);
  });
});

describe("ReferenceMatcher", () => {
  test("exact host, any path, case-insensitive, port and dot stripped", () => {
    const m = new ReferenceMatcher();
    expect(m.insert("app.example.com", 1)).toBe(true);
    expect(m.lookup("APP.example.com:8080", "/anything/at/all?x")).toBe(1);
    expect(m.lookup("app.example.com.", "/")).toBe(1);
    expect(m.lookup("other.example.com", "/")).toBe(-1);
    expect(m.size).toBe(1);
  });

  test("longest context path on a segment boundary wins", () => {
    const m = new ReferenceMatcher();
    m.insert("app.com", 1);
    m.insert("app.com/api", 2);
    m.insert("app.com/api/v1", 3);
    expect(m.lookup("app.com", "/api")).toBe(2);
    expect(m.lastMatchedLength).toBe(4);
    expect(m.lookup("app.com", "/api/")).toBe(2);
    expect(m.lookup("app.com", "/api/v1/users")).toBe(3);
    expect(m.lastMatchedLength).toBe(7);
    expect(m.lookup("app.com", "/apix")).toBe(1);
    expect(m.lastMatchedLength).toBe(0);
    expect(m.lookup("app.com", "/API/V1")).toBe(3);
    expect(m.lookup("app.com", "/api?v1")).toBe(2);
    expect(m.lookup("app.com", "/api#/v1")).toBe(2);
    expect(m.lookup("app.com", "/api//v1")).toBe(2);
    expect(m.lookup("app.com", "/api/../v1")).toBe(2);
    expect(m.lookup("app.com", "/api%2Fv1")).toBe(1);
  });

  test("a host with only path routes misses other paths", () => {
    const m = new ReferenceMatcher();
    m.insert("app.com/api", 2);
    expect(m.lookup("app.com", "/")).toBe(-1);
    expect(m.lookup("app.com", "/ap")).toBe(-1);
  });

  test("wildcards: exact first, then leftmost label first", () => {
    const m = new ReferenceMatcher();
    m.insert("*.b.c", 10);
    m.insert("*.c", 11);
    m.insert("x.b.c", 12);
    m.insert("*.b.c/deep/path", 13);
    expect(m.lookup("a.b.c", "/")).toBe(10);
    expect(m.lookup("a.a.b.c", "/")).toBe(10);
    expect(m.lookup("z.c", "/")).toBe(11);
    expect(m.lookup("a.z.c", "/")).toBe(11);
    expect(m.lookup("c", "/")).toBe(-1);
    // The exact host wins even though the wildcard has a longer path match.
    expect(m.lookup("x.b.c", "/deep/path")).toBe(12);
    expect(m.lookup("a.b.c", "/deep/path/x")).toBe(13);
    expect(m.lookup("*.b.c", "/")).toBe(-1);
  });

  test("an exact host whose paths miss falls through to wildcards", () => {
    const m = new ReferenceMatcher();
    m.insert("a.b.c/api", 1);
    m.insert("*.b.c", 2);
    expect(m.lookup("a.b.c", "/api/x")).toBe(1);
    expect(m.lookup("a.b.c", "/web")).toBe(2);
  });

  test("replace, remove, prune, clear", () => {
    const m = new ReferenceMatcher();
    expect(m.insert("app.com/a/b", 1)).toBe(true);
    expect(m.insert("APP.com/A/B/", 2)).toBe(true);
    expect(m.size).toBe(1);
    expect(m.lookup("app.com", "/a/b")).toBe(2);
    expect(m.remove("app.com/a")).toBe(false);
    expect(m.remove("app.com")).toBe(false);
    expect(m.remove("other.com")).toBe(false);
    expect(m.remove("app.com/a/b?x")).toBe(true);
    expect(m.remove("app.com/a/b")).toBe(false);
    expect(m.size).toBe(0);
    expect(m.lookup("app.com", "/a/b")).toBe(-1);
    m.insert("x.com", 5);
    m.insert("x.com/p", 6);
    m.remove("x.com");
    expect(m.lookup("x.com", "/p")).toBe(6);
    expect(m.lookup("x.com", "/q")).toBe(-1);
    m.clear();
    expect(m.size).toBe(0);
    expect(m.lookup("x.com", "/p")).toBe(-1);
  });

  test("bad keys and ids are refused", () => {
    const m = new ReferenceMatcher();
    expect(m.insert("", 1)).toBe(false);
    expect(m.insert("a..b", 1)).toBe(false);
    expect(m.insert("a.com", -1)).toBe(false);
    expect(m.insert("a.com", 1.5)).toBe(false);
    expect(m.insert("a.com", 2 ** 31)).toBe(false);
    expect(m.insert("a.com", 2 ** 31 - 1)).toBe(true);
    expect(m.remove("a..b")).toBe(false);
    expect(m.lookup("a..b", "/")).toBe(-1);
    expect(m.size).toBe(1);
  });
});
