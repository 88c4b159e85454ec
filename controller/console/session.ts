// The console's session: the bearer token `POST /v3/tokens` issued, kept in an HttpOnly, SameSite=Strict
// cookie (Secure when served over TLS). Every change also carries a CSRF token derived from the session
// token (a hash: it reveals nothing of the token, and a page on another site can neither read the
// cookie nor compute it). The cookie never authenticates /v3: the console turns it into the bearer
// token of an in-process API call, so the API's gate and its authorization decide everything.

import { createHash, timingSafeEqual } from "node:crypto";
import { TOKEN_TTL_MS } from "../src/api/auth.ts";

export const SESSION_COOKIE = "skiff_session";
export const CSRF_HEADER = "x-csrf-token";
export const CSRF_FIELD = "_csrf";

export function sessionToken(request: Request): string | undefined {
  const cookie = request.headers.get("cookie");
  if (!cookie) return undefined;
  for (const part of cookie.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      const v = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{20,200}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

export const csrfTokenOf = (sessionToken: string) => createHash("sha256").update(`skiff-console-csrf\0${sessionToken}`).digest("base64url");

/** Whether `given` is the session's CSRF token (compared in constant time). */
export function csrfMatches(sessionToken: string, given: string | null | undefined): boolean {
  if (!given) return false;
  const want = Buffer.from(csrfTokenOf(sessionToken));
  const got = Buffer.from(given);
  return got.length === want.length && timingSafeEqual(got, want);
}

const isTls = (request: Request) => request.url.startsWith("https:");

export function sessionCookie(request: Request, token: string, maxAgeMs = TOKEN_TTL_MS): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(maxAgeMs / 1000)}${isTls(request) ? "; Secure" : ""}`;
}

export function clearedSessionCookie(request: Request): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${isTls(request) ? "; Secure" : ""}`;
}
