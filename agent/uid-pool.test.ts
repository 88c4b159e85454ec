import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseUidRange, UidPool, UidRangeError, UidsExhaustedError, type UidPoolHost } from "./uid-pool.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const lockDir = () => {
  const d = mkdtempSync(join(tmpdir(), "skiff-uids-"));
  dirs.push(d);
  return d;
};

/** A host where the agents named in `alive` run, uids in `busy` have processes, `system` ids are taken. */
const host = (self: string, alive: Set<string>, busy = new Set<number>(), system = new Set<number>()): UidPoolHost => ({
  self,
  ownerAlive: (owner) => alive.has(owner.trim()),
  uidsInUse: () => busy,
  systemIds: () => system,
});

describe("uid pool (issue 6)", () => {
  test("parses a range and refuses bad ones with what to write", () => {
    expect(parseUidRange("40000-49999")).toEqual({ first: 40000, last: 49999 });
    expect(parseUidRange(" 5000 - 5000 ")).toEqual({ first: 5000, last: 5000 });
    for (const bad of ["", "40000", "5-10", "50000-40000", "a-b", "0-10"]) expect(() => parseUidRange(bad)).toThrow(UidRangeError);
    expect(() => parseUidRange("x")).toThrow(/40000-49999/);
  });

  test("hands out distinct uids, skips system and busy ids, and says so when the range is exhausted", () => {
    const pool = new UidPool({ first: 5000, last: 5004 }, lockDir(), host("A", new Set(["A"]), new Set([5001]), new Set([5003])));
    const got = [pool.acquire(), pool.acquire(), pool.acquire()];
    expect(new Set(got).size).toBe(3);
    expect(got.sort()).toEqual([5000, 5002, 5004]);
    expect(() => pool.acquire()).toThrow(UidsExhaustedError);
    expect(() => pool.acquire()).toThrow(/SKIFF_AGENT_UID_RANGE/);
    pool.release(5002);
    expect(pool.acquire()).toBe(5002);
  });

  test("two agents sharing a host's lock dir never hold the same uid", () => {
    const dir = lockDir();
    const alive = new Set(["A", "B"]);
    const a = new UidPool({ first: 6000, last: 6009 }, dir, host("A", alive));
    const b = new UidPool({ first: 6000, last: 6009 }, dir, host("B", alive));
    const held = [];
    for (let k = 0; k < 5; k++) held.push(a.acquire(), b.acquire());
    expect(new Set(held).size).toBe(10);
    expect(() => a.acquire()).toThrow(UidsExhaustedError);
    a.release(held[0]!);
    expect(existsSync(join(dir, String(held[0])))).toBe(false);
    expect(b.acquire()).toBe(held[0]!);
  });

  test("a uid whose agent died is taken over; one whose agent runs is not; a release frees only its own lock", () => {
    const dir = lockDir();
    writeFileSync(join(dir, "7000"), "dead\n");
    writeFileSync(join(dir, "7001"), "B\n");
    const a = new UidPool({ first: 7000, last: 7001 }, dir, host("A", new Set(["A", "B"])));
    expect(a.claimStale(7001)).toBe(false);
    expect(a.acquire()).toBe(7000);
    expect(readFileSync(join(dir, "7000"), "utf8")).toBe("A\n");
    expect(existsSync(join(dir, "7000.takeover"))).toBe(false);
    expect(() => a.acquire()).toThrow(UidsExhaustedError);
    a.release(7001); // not ours
    expect(readFileSync(join(dir, "7001"), "utf8")).toBe("B\n");
  });

  test("a restarted agent reclaims its dead run's uid; a takeover in progress elsewhere keeps it out", () => {
    const dir = lockDir();
    writeFileSync(join(dir, "8000"), "old-run\n");
    writeFileSync(join(dir, "8001"), "old-run\n");
    writeFileSync(join(dir, "8001.takeover"), "C\n");
    const a = new UidPool({ first: 8000, last: 8001 }, dir, host("A", new Set(["A"]), new Set([8000])));
    expect(a.claimStale(8000)).toBe(true); // busy with the dead run's leftovers: the restart sweeps them
    expect(a.claimStale(8001)).toBe(false);
    expect(a.claimStale(9999)).toBe(false); // outside the range
  });

  test("at start, locks dead agents left on idle uids are removed; held, busy and live ones stay", () => {
    const dir = lockDir();
    for (const [uid, owner] of [["9000", "dead"], ["9001", "dead"], ["9002", "B"], ["9003", "dead"]]) writeFileSync(join(dir, uid!), owner + "\n");
    const a = new UidPool({ first: 9000, last: 9009 }, dir, host("A", new Set(["A", "B"]), new Set([9001])));
    expect(a.sweepStale()).toBe(2);
    expect(["9000", "9001", "9002", "9003"].map((u) => existsSync(join(dir, u)))).toEqual([false, true, true, false]);
  });
});
