import { expect, test } from "bun:test";
import { scramVerifier } from "./postgres.ts";
import { advertised, credentials, newPassword, resourceName } from "./names.ts";

test("resource names are deterministic, short, [a-z0-9] only, distinct per id", () => {
  const a = resourceName("skiffdb", "8d7c1f0e-0000-4000-8000-000000000001");
  expect(a).toBe(resourceName("skiffdb", "8d7c1f0e-0000-4000-8000-000000000001"));
  expect(a).toMatch(/^skiffdb[0-9a-f]{24}$/);
  expect(a.length).toBeLessThanOrEqual(32);
  expect(resourceName("skiffdb", "x'; DROP DATABASE y; --")).toMatch(/^[a-z0-9]+$/);
  expect(resourceName("skiffdb", "a")).not.toBe(resourceName("skiffdb", "A"));
  expect(() => resourceName("bad_prefix", "a")).toThrow();
});

test("passwords are URL-safe and fresh", () => {
  const p = newPassword();
  expect(p).toMatch(/^[A-Za-z0-9_-]{32}$/);
  expect(newPassword()).not.toBe(p);
});

test("credentials build the uri from the parts; advertised host overrides the admin URL's", () => {
  const where = advertised("postgres://admin:pw@10.0.0.5:5433/postgres", { host: "db.internal" });
  expect(where).toEqual({ hostname: "db.internal", port: 5433 });
  const c = credentials("postgres", { ...where, name: "d", username: "u", password: "p@ss" }, "/d");
  expect(c.uri).toBe("postgres://u:p%40ss@db.internal:5433/d");
  expect(advertised("redis://:pw@127.0.0.1", undefined, 6379).port).toBe(6379);
});

test("scramVerifier has PostgreSQL's stored format", () => {
  expect(scramVerifier("secret")).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
});
