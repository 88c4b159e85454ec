import { describe, expect, test } from "bun:test";
import { ChangeQueue, REGISTER, UNREGISTER } from "./change-queue.ts";

describe("ChangeQueue", () => {
  test("gives changes back in order, byte for byte, through growth and compaction", () => {
    const q = new ChangeQueue();
    const sent: [number, Uint8Array][] = [];
    let received = 0;
    let seed = 1;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let step = 0; step < 6_000; step++) {
      if (rand(3) > 0) {
        // sizes from empty to past the initial 64 KiB buffer
        const bytes = new Uint8Array(rand(40) === 0 ? rand(200_000) : rand(300));
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + step) & 255;
        const op = rand(2) === 0 ? REGISTER : UNREGISTER;
        q.push(op, bytes);
        sent.push([op, bytes]);
      } else if (q.length > 0) {
        const [op, bytes] = sent[received++]!;
        expect(q.peekOp()).toBe(op);
        expect(Buffer.compare(q.data(), bytes)).toBe(0);
        q.shift();
      }
      expect(q.length).toBe(sent.length - received);
    }
    while (q.length > 0) {
      expect(Buffer.compare(q.data(), sent[received++]![1])).toBe(0);
      q.shift();
    }
    expect(q.peekOp()).toBe(-1);
  });
});
