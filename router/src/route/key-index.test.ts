import { describe, expect, test } from "bun:test";
import { ByteArena } from "./byte-arena.ts";
import { KeyIndex } from "./key-index.ts";

describe("ByteArena", () => {
  test("stores, reads back (UTF-8), and reuses freed slots of the same size", () => {
    const a = new ByteArena(32);
    const long = "x".repeat(5000);
    const offs = ["", "a.com", "ünïcode/ß", long].map((s) => a.store(s));
    expect(offs.map((o) => a.read(o))).toEqual(["", "a.com", "ünïcode/ß", long]);
    const before = a.stats.bufferBytes;
    a.release(offs[1]!);
    expect(a.store("b.org")).toBe(offs[1]!);
    expect(a.stats.bufferBytes).toBe(before);
    expect(a.read(offs[3]!)).toBe(long); // still intact after the buffer grew past it
  });

  test("churn at a steady size never grows the buffer", () => {
    const a = new ByteArena(1024);
    const live: number[] = [];
    for (let i = 0; i < 100; i++) live.push(a.store(`route-${i}.example.com`));
    const size = a.stats.bufferBytes;
    for (let i = 0; i < 10_000; i++) {
      a.release(live.shift()!);
      live.push(a.store(`route-${i + 100}.example.com`));
    }
    expect(a.stats.bufferBytes).toBe(size);
    expect(a.read(live.at(-1)!)).toBe("route-10099.example.com");
  });
});

describe("KeyIndex", () => {
  test("agrees with a Map through random inserts and deletes (growth and backward-shift deletion)", () => {
    const arena = new ByteArena(64);
    const offsets: number[] = [];
    const index = new KeyIndex(arena, (id) => offsets[id]!);
    const reference = new Map<string, number>();
    let seed = 7;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    const freeIds: number[] = [];
    for (let step = 0; step < 40_000; step++) {
      const key = `k${rand(3000)}.example.com`;
      const have = reference.get(key);
      if (have === undefined) {
        const id = freeIds.pop() ?? offsets.length;
        offsets[id] = arena.store(key);
        index.insert(id);
        reference.set(key, id);
      } else if (rand(2) === 0) {
        expect(index.delete(have)).toBe(true);
        arena.release(offsets[have]!);
        freeIds.push(have);
        reference.delete(key);
      }
      if (step % 997 === 0) {
        for (const [k, id] of reference) expect(index.find(k)).toBe(id);
        expect(index.size).toBe(reference.size);
      }
    }
    for (let i = 0; i < 3000; i++) {
      const k = `k${i}.example.com`;
      expect(index.find(k)).toBe(reference.get(k) ?? -1);
    }
  });

  test("keys that collide in the hash are told apart by their bytes", () => {
    const arena = new ByteArena(64);
    const offsets = ["ab", "ba", "abc"].map((k) => arena.store(k));
    const index = new KeyIndex(arena, (id) => offsets[id]!);
    // a tiny table: every key probes through the others' slots
    offsets.forEach((_, id) => index.insert(id));
    expect(["ab", "ba", "abc", "a", "abcd"].map((k) => index.find(k))).toEqual([0, 1, 2, -1, -1]);
    expect(index.delete(0)).toBe(true);
    expect(index.delete(0)).toBe(false);
    expect(["ab", "ba", "abc"].map((k) => index.find(k))).toEqual([-1, 1, 2]);
  });
});
