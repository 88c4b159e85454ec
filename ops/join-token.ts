// Join tokens (issue 27): what an operator pastes on a new host. A token names the registrar's URL,
// pins the cluster CA by its sha256 (a host trusts nothing before it has checked that), and carries a
// secret that the registrar keeps only as a hash, with an expiry and a number of uses.
//   skiff1.<base64url registrar URL>.<CA sha256 hex>.<id>.<secret>

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export interface JoinToken {
  registrarUrl: string;
  caFingerprint: string;
  id: string;
  secret: string;
}

export class JoinTokenError extends Error {
  override name = "JoinTokenError";
}

export function formatToken(t: JoinToken): string {
  return ["skiff1", Buffer.from(t.registrarUrl).toString("base64url"), t.caFingerprint, t.id, t.secret].join(".");
}

export function parseToken(text: string): JoinToken {
  const parts = text.trim().split(".");
  if (parts.length !== 5 || parts[0] !== "skiff1") throw new JoinTokenError("not a skiff join token (skiff1.…): make one with `skiff-node token create` on the first controller host");
  const [, url, fp, id, secret] = parts as [string, string, string, string, string];
  const registrarUrl = Buffer.from(url, "base64url").toString();
  if (!/^https:\/\/[^/]+$/.test(registrarUrl)) throw new JoinTokenError(`the token's registrar URL is not https://host:port: ${registrarUrl}`);
  if (!/^[0-9a-f]{64}$/.test(fp)) throw new JoinTokenError("the token's CA fingerprint is not a sha256");
  if (!/^[a-z0-9]{8}$/.test(id) || !/^[A-Za-z0-9_-]{32,}$/.test(secret)) throw new JoinTokenError("the token's id or secret is malformed");
  return { registrarUrl, caFingerprint: fp, id, secret };
}

/** What the registrar keeps of a token. */
export interface StoredToken {
  id: string;
  secretSha256: string;
  expiresAt: number;
  usesLeft: number;
  /** the roles a host may join as with it */
  roles: string[];
  createdAt: number;
}

export const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

export function newToken(opts: { registrarUrl: string; caFingerprint: string; ttlMs: number; uses: number; roles: string[]; now?: number }): { token: JoinToken; stored: StoredToken } {
  const now = opts.now ?? Date.now();
  const id = randomBytes(5).toString("hex").slice(0, 8);
  const secret = randomBytes(24).toString("base64url");
  return {
    token: { registrarUrl: opts.registrarUrl, caFingerprint: opts.caFingerprint, id, secret },
    stored: { id, secretSha256: sha256(secret), expiresAt: now + opts.ttlMs, usesLeft: opts.uses, roles: opts.roles, createdAt: now },
  };
}

/**
 * Spends one use of a token for `role`, or says why not. Pure: returns the tokens to keep (an
 * exhausted or expired token is dropped), so the caller writes them back in one step.
 */
export function spendToken(tokens: StoredToken[], id: string, secret: string, role: string, now = Date.now()): { ok: true; tokens: StoredToken[] } | { ok: false; reason: string } {
  const live = tokens.filter((t) => t.expiresAt > now && t.usesLeft > 0);
  const t = tokens.find((x) => x.id === id);
  const given = Buffer.from(sha256(secret), "hex");
  if (!t || !timingSafeEqual(Buffer.from(t.secretSha256, "hex"), given)) return { ok: false, reason: "unknown join token (it may have been used up or revoked)" };
  if (t.expiresAt <= now) return { ok: false, reason: `the join token expired at ${new Date(t.expiresAt).toISOString()}: make a new one with skiff-node token create` };
  if (t.usesLeft <= 0) return { ok: false, reason: "the join token has been used already: make a new one with skiff-node token create" };
  if (!t.roles.includes(role)) return { ok: false, reason: `the join token is for ${t.roles.join(", ")}, not ${role}` };
  const spent = { ...t, usesLeft: t.usesLeft - 1 };
  return { ok: true, tokens: live.map((x) => (x.id === id ? spent : x)).filter((x) => x.usesLeft > 0) };
}

/** "30m", "2h", "90s", "1d" → ms */
export function parseDuration(s: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(s.trim());
  if (!m) throw new JoinTokenError(`not a duration (like 30m, 2h, 1d): ${s}`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
}
