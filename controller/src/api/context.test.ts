import { expect, test } from "bun:test";
import { loginLimitsFromEnv } from "./context.ts";

test("login limits from the environment: only what is set, whole numbers of at least 1", () => {
  expect(loginLimitsFromEnv({})).toEqual({});
  expect(loginLimitsFromEnv({ SKIFF_LOGIN_LOCKOUT_FAILURES: "3", SKIFF_LOGIN_LOCKOUT_SECONDS: "600", SKIFF_LOGIN_ATTEMPTS_PER_MINUTE: "100" }))
    .toEqual({ loginFailuresBeforeLock: 3, loginLockMs: 600_000, loginAttemptsPerAddress: 100 });
  for (const bad of ["0", "-1", "1.5", "lots"]) expect(() => loginLimitsFromEnv({ SKIFF_LOGIN_LOCKOUT_SECONDS: bad })).toThrow("SKIFF_LOGIN_LOCKOUT_SECONDS");
});
