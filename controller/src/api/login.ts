// Logging in (POST /v3/tokens) against guessing (issue 24): a per-client-address rate limit, and
// UAA's lockout — after `loginFailuresBeforeLock` failed logins in a row a name is locked for
// `loginLockMs`, with an `audit.user.locked` event. Names that do not exist are counted and locked
// the same way, so no answer (nor its timing) tells whether a user exists.

import type { Logger } from "../../../bus/index.ts";
import type { Store, UserRecord } from "../db/store.ts";
import { FixedWindowLimiter } from "../rate-limit.ts";
import type { Limits } from "./context.ts";
import { accountLocked, notAuthenticated, rateLimited } from "./errors.ts";

/** Verified against for unknown names, so they cost what a known one does. */
const DUMMY_HASH = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0$2K5WrDl8hSbmfK+ZgV0k0g";

export type LoginLimits = Pick<Limits, "loginFailuresBeforeLock" | "loginLockMs" | "loginFailureWindowMs" | "loginAttemptsPerAddress" | "loginAttemptWindowMs">;

export class LoginGuard {
  private readonly perAddress: FixedWindowLimiter;

  constructor(private readonly deps: { store: Store; log: Logger; limits: LoginLimits; now?: () => number }) {
    this.perAddress = new FixedWindowLimiter({ limit: deps.limits.loginAttemptsPerAddress, windowMs: deps.limits.loginAttemptWindowMs });
  }

  /**
   * The user whose name and password these are, or an ApiError: 429 over the address's rate,
   * 401 "locked" while the name is locked (the password is then not even checked), 401 otherwise.
   * `address` comes from the socket (Bun's server.requestIP), never from a header a client sets;
   * requests handled in-process without a socket share one count.
   */
  async logIn(username: string, password: string, address: string | undefined): Promise<UserRecord> {
    const { store, limits } = this.deps;
    const now = (this.deps.now ?? Date.now)();
    const rate = this.perAddress.hit(address ?? "(no address)", now);
    if (!rate.ok) throw rateLimited(rate.retryAfterMs, `at most ${limits.loginAttemptsPerAddress} login attempts per ${Math.round(limits.loginAttemptWindowMs / 1000)} s from one address`);

    // counted before the check, so parallel guesses cannot all get in under the limit
    const attempt = await store.countLoginAttempt(username, now, limits.loginFailureWindowMs);
    if (attempt.lockedUntil !== null && attempt.lockedUntil > now) throw accountLocked(attempt.lockedUntil, now);
    const user = await store.userByName(username);
    if (attempt.failures > limits.loginFailuresBeforeLock) throw accountLocked(await this.lock(username, user, attempt.failures, address, now), now);

    const ok = await Bun.password.verify(password, user?.password_hash ?? DUMMY_HASH).catch(() => false);
    if (user && ok) {
      await store.clearLoginFailures(username);
      return user;
    }
    if (attempt.failures >= limits.loginFailuresBeforeLock) throw accountLocked(await this.lock(username, user, attempt.failures, address, now), now);
    throw notAuthenticated("Wrong username or password.");
  }

  /** Locks the name (once: a lock already running is kept) and records who was locked; returns until when. */
  private async lock(username: string, user: UserRecord | undefined, failures: number, address: string | undefined, now: number): Promise<number> {
    const { store, log, limits } = this.deps;
    const { locked, lockedUntil } = await store.lockLogin(username, now + limits.loginLockMs, now);
    if (!locked) return lockedUntil;
    const data = { failed_logins: failures, locked_until: new Date(lockedUntil).toISOString(), client_address: address ?? null };
    if (user) {
      await store.tx((q) => store.recordEvent(q, { type: "audit.user.locked", actor_guid: null, actor_name: "system", target_type: "user", target_guid: user.guid, target_name: user.username, space_guid: null, data }));
    }
    log.warn("login locked after failed attempts", { username, known: !!user, ...data });
    return lockedUntil;
  }
}
