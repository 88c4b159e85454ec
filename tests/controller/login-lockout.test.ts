// Issue 24, "also": logins could be guessed without limit. Five failed logins in a row lock the
// name (the right password included) for a stated time, with an audit event, and a name that does
// not exist answers exactly the same; POST /v3/tokens is rate-limited per client address, taken
// from the socket. Two controllers on free loopback ports with shortened periods (memory bus).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createBus, MemoryBroker, memoryLogger } from "../../bus/index.ts";
import { startController, type RunningController } from "../../controller/main.ts";
import type { Limits } from "../../controller/src/api/context.ts";

const LOCK_MS = 3000;
let dir: string;
let locking: RunningController; // lockout: 5 failures, a 3 s lock
let limited: RunningController; // rate limit: 3 attempts per address per minute
let admin: string;

async function start(name: string, limits: Partial<Limits>): Promise<RunningController> {
  const broker = new MemoryBroker();
  return startController(
    { natsUrl: "", port: 0, dataDir: join(dir, name), domain: "skiff.test", adminPassword: "adminpass", embedHealthManager: false, limits },
    { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger() },
  );
}

interface Answer { status: number; title: string; detail: string; retryAfter: string | null; token?: string }
/** POST /v3/tokens in-process (no socket address) or, with `viaSocket`, over the loopback port. */
async function logIn(c: RunningController, username: string, password: string, opts: { viaSocket?: boolean; headers?: Record<string, string> } = {}): Promise<Answer> {
  const init = { method: "POST", headers: { "content-type": "application/json", ...opts.headers }, body: JSON.stringify({ username, password }) };
  const res = opts.viaSocket ? await fetch(`http://127.0.0.1:${c.port}/v3/tokens`, init) : await c.app.handle(new Request("http://controller.test/v3/tokens", init));
  const json = (await res.json()) as any;
  return { status: res.status, title: json.errors?.[0]?.title ?? "", detail: json.errors?.[0]?.detail ?? "", retryAfter: res.headers.get("retry-after"), token: json.access_token };
}
async function callAs(c: RunningController, tok: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await c.app.handle(new Request("http://controller.test" + path, { method, headers: { authorization: `bearer ${tok}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) }));
  return res.json();
}
/** An answer without the moment it names, to compare two names' answers. */
const shape = (a: Answer) => ({ ...a, detail: a.detail.replace(/\d+ s more, until \S+/, "N s more, until T"), retryAfter: a.retryAfter === null ? null : "N" });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "skiff-lockout-"));
  locking = await start("locking", { loginLockMs: LOCK_MS, loginAttemptsPerAddress: 10_000 });
  limited = await start("limited", { loginAttemptsPerAddress: 3, loginAttemptWindowMs: 60_000 });
  admin = (await logIn(locking, "admin", "adminpass")).token!;
  for (const u of ["victim", "twin", "steady", "clier", "unlocked", "cli-unlocked"]) await callAs(locking, admin, "POST", "/v3/users", { username: u, password: `${u}-password` });
}, 30_000);

afterAll(async () => {
  await locking?.stop();
  await limited?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("login lockout (issue 24)", () => {
  test("5 failed logins in a row lock the account: the right password is refused until the lock ends", async () => {
    const answers: Answer[] = [];
    for (let i = 0; i < 5; i++) answers.push(await logIn(locking, "victim", "wrong-password"));
    expect(answers.map((a) => a.status)).toEqual([401, 401, 401, 401, 401]);
    expect(answers.slice(0, 4).every((a) => a.detail === "Wrong username or password.")).toBe(true);
    // the 5th failure locks, and says so
    expect(answers[4]!.title).toBe("CF-AccountLocked");
    const right = await logIn(locking, "victim", "victim-password");
    expect(right.status).toBe(401);
    expect(right.title).toBe("CF-AccountLocked");
    expect(right.detail).toMatch(/locked for \d+ s more, until \d{4}-\d\d-\d\dT[\d:.]+Z\. Try again then\./);
    expect(Number(right.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(right.retryAfter)).toBeLessThanOrEqual(Math.ceil(LOCK_MS / 1000));
    expect(right.token).toBeUndefined();

    // an audit event for the admins, by the system, with when it ends
    const events = (await callAs(locking, admin, "GET", "/v3/events?types=audit.user.locked")).resources;
    expect(events.length).toBe(1);
    expect(events[0]).toMatchObject({ type: "audit.user.locked", actor: { type: "system" }, target: { type: "user", name: "victim" }, data: { failed_logins: 5 } });
    expect(events[0].space).toBeNull();

    await Bun.sleep(LOCK_MS + 100);
    const after = await logIn(locking, "victim", "victim-password");
    expect(after.status).toBe(201);
    expect(after.token).toBeDefined();
  }, 20_000);

  test("a success resets the count", async () => {
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) expect((await logIn(locking, "steady", "wrong-password")).status).toBe(401);
      expect((await logIn(locking, "steady", "steady-password")).status).toBe(201);
    }
  });

  test("a name that does not exist answers exactly as one that does, locked included", async () => {
    const known: Answer[] = [], unknown: Answer[] = [];
    for (let i = 0; i < 6; i++) {
      known.push(shape(await logIn(locking, "twin", "wrong-password")));
      unknown.push(shape(await logIn(locking, "nobody-by-this-name", "wrong-password")));
    }
    expect(unknown).toEqual(known);
    expect(known.map((a) => a.title)).toEqual(["CF-NotAuthenticated", "CF-NotAuthenticated", "CF-NotAuthenticated", "CF-NotAuthenticated", "CF-AccountLocked", "CF-AccountLocked"]);
  });

  test("parallel guesses cannot slip past the limit: at most 5 passwords are checked", async () => {
    await callAs(locking, admin, "POST", "/v3/users", { username: "swarmed", password: "swarmed-password" });
    const answers = await Promise.all(Array.from({ length: 12 }, () => logIn(locking, "swarmed", "wrong-password")));
    expect(answers.filter((a) => a.detail === "Wrong username or password.").length).toBeLessThanOrEqual(4);
    expect(answers.filter((a) => a.title === "CF-AccountLocked").length).toBeGreaterThanOrEqual(8);
    expect((await logIn(locking, "swarmed", "swarmed-password")).title).toBe("CF-AccountLocked");
  });

  test("the CLI says the account is locked and when to retry", async () => {
    for (let i = 0; i < 5; i++) await logIn(locking, "clier", "wrong-password");
    const p = Bun.spawn([join(resolve(import.meta.dir, "../.."), "cli/bin/skiff"), "login", "-a", locking.url, "-u", "clier", "-p", "clier-password"], {
      env: { ...process.env, SKIFF_HOME: join(dir, "home") }, stdout: "pipe", stderr: "pipe", stdin: "ignore",
    });
    const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    expect(code).toBe(1);
    expect(err).toMatch(/this account is locked for \d+ s more, until .* Try again then\. \[CF-AccountLocked\]/);
  }, 30_000);
});

describe("an admin ends a lockout before its time (UAA's PATCH /Users/{id}/status)", () => {
  const userGuid = async (name: string) => (await callAs(locking, admin, "GET", "/v3/users?per_page=100")).resources.find((u: any) => u.username === name).guid as string;

  test("PATCH /v3/users/:guid/status {locked: false}: the right password logs in at once, with an audit.user.unlock event; nobody else may, and locking by hand is refused", async () => {
    for (let i = 0; i < 5; i++) await logIn(locking, "unlocked", "wrong-password");
    expect((await logIn(locking, "unlocked", "unlocked-password")).title).toBe("CF-AccountLocked");
    const guid = await userGuid("unlocked");
    // a user cannot unlock anyone, themselves included; an admin cannot lock by hand; an unknown guid is 404
    const other = (await logIn(locking, "steady", "steady-password")).token!;
    expect((await callAs(locking, other, "PATCH", `/v3/users/${guid}/status`, { locked: false })).errors[0].title).toBe("CF-NotAuthorized");
    expect((await callAs(locking, admin, "PATCH", `/v3/users/${guid}/status`, { locked: true })).errors[0].title).toBe("CF-UnprocessableEntity");
    expect((await callAs(locking, admin, "PATCH", "/v3/users/no-such-guid/status", { locked: false })).errors[0].title).toBe("CF-ResourceNotFound");
    expect((await logIn(locking, "unlocked", "unlocked-password")).title).toBe("CF-AccountLocked");

    const r = await callAs(locking, admin, "PATCH", `/v3/users/${guid}/status`, { locked: false });
    expect(r).toMatchObject({ guid, username: "unlocked", locked: false });
    expect((await logIn(locking, "unlocked", "unlocked-password")).status).toBe(201);
    const events = await callAs(locking, admin, "GET", `/v3/events?target_guids=${guid}&types=audit.user.unlock`);
    expect(events.resources.map((e: any) => [e.type, e.actor.name])).toEqual([["audit.user.unlock", "admin"]]);
  });

  test("skiff unlock-user USERNAME", async () => {
    for (let i = 0; i < 5; i++) await logIn(locking, "cli-unlocked", "wrong-password");
    const home = join(dir, "home-admin");
    // spawned, not spawnSync: the controller answering it runs in this process
    const skiff = async (...args: string[]) => {
      const p = Bun.spawn([join(resolve(import.meta.dir, "../.."), "cli/bin/skiff"), ...args], { env: { ...process.env, SKIFF_HOME: home }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      return { code, out: out + err };
    };
    expect((await skiff("login", "-a", locking.url, "-u", "admin", "-p", "adminpass")).code).toBe(0);
    expect(await skiff("unlock-user", "nobody-such")).toMatchObject({ code: 1, out: expect.stringContaining("no user named nobody-such") });
    const r = await skiff("unlock-user", "cli-unlocked");
    expect(r.out).toContain("Unlocked cli-unlocked");
    expect(r.code).toBe(0);
    expect((await logIn(locking, "cli-unlocked", "cli-unlocked-password")).status).toBe(201);
  }, 30_000);
});

describe("POST /v3/tokens rate limit per client address (issue 24)", () => {
  test("the 4th attempt in a minute from one address answers 429 with Retry-After; a forged X-Forwarded-For does not help", async () => {
    const answers: Answer[] = [];
    for (let i = 0; i < 3; i++) answers.push(await logIn(limited, `someone${i}`, "wrong-password", { viaSocket: true }));
    expect(answers.map((a) => a.status)).toEqual([401, 401, 401]);
    const forged: Record<string, string>[] = [{}, { "x-forwarded-for": "203.0.113.9" }, { "x-real-ip": "203.0.113.10", forwarded: "for=203.0.113.11" }];
    for (const headers of forged) {
      const r = await logIn(limited, "admin", "adminpass", { viaSocket: true, headers });
      expect(r.status).toBe(429);
      expect(r.title).toBe("CF-RateLimitExceeded");
      expect(r.detail).toContain("at most 3 login attempts per 60 s from one address");
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(r.retryAfter)).toBeLessThanOrEqual(60);
    }
  });
});
