import { expect, test } from "bun:test";
import { clearedSessionCookie, csrfMatches, csrfTokenOf, sessionCookie, sessionToken } from "./session.ts";

const token = "A".repeat(43);

test("the session cookie is HttpOnly and SameSite=Strict, Secure only over TLS", () => {
  expect(sessionCookie(new Request("http://c/console/"), token)).toBe(`skiff_session=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=86400`);
  expect(sessionCookie(new Request("https://c/console/"), token)).toEndWith("; Secure");
  expect(clearedSessionCookie(new Request("https://c/"))).toContain("Max-Age=0");
});

test("the token is read from the cookie header, and nothing odd is taken for one", () => {
  expect(sessionToken(new Request("http://c/", { headers: { cookie: `a=b; skiff_session=${token}; c=d` } }))).toBe(token);
  expect(sessionToken(new Request("http://c/", { headers: { cookie: `skiff_session=x;y` } }))).toBeUndefined();
  expect(sessionToken(new Request("http://c/"))).toBeUndefined();
});

test("the CSRF token is the session's and no other", () => {
  expect(csrfMatches(token, csrfTokenOf(token))).toBe(true);
  expect(csrfMatches(token, csrfTokenOf("B".repeat(43)))).toBe(false);
  expect(csrfMatches(token, "")).toBe(false);
  expect(csrfMatches(token, null)).toBe(false);
  expect(csrfTokenOf(token)).not.toContain(token);
});
