import { expect, test } from "bun:test";
import { encodeClientFrame, FrameParser, Opcode } from "./websocket-frames.ts";

function collect() {
  const got: { kind: string; data: string; binary?: boolean; code?: number }[] = [];
  const parser = new FrameParser(
    {
      onMessage: (p, b) => got.push({ kind: "msg", data: p.toString(), binary: b }),
      onPing: (p) => got.push({ kind: "ping", data: p.toString() }),
      onClose: (code, r) => got.push({ kind: "close", data: r.toString(), code }),
    },
    1 << 20,
  );
  return { got, parser };
}

test("masked frames round-trip through the parser, split anywhere", () => {
  for (const size of [0, 5, 125, 126, 1000, 70_000]) {
    const payload = Buffer.alloc(size, 65);
    const frame = encodeClientFrame(Opcode.Binary, payload);
    for (const cut of [1, 2, 3, 7, Math.floor(frame.length / 2)]) {
      if (cut >= frame.length) continue;
      const { got, parser } = collect();
      parser.push(frame.subarray(0, cut));
      parser.push(frame.subarray(cut));
      expect(got).toEqual([{ kind: "msg", data: payload.toString(), binary: true }]);
    }
  }
});

test("fragments, ping and close", () => {
  const { got, parser } = collect();
  const unmasked = (b0: number, s: string) => Buffer.concat([Buffer.from([b0, s.length]), Buffer.from(s)]);
  parser.push(Buffer.concat([unmasked(0x01, "hel"), unmasked(0x89, "p"), unmasked(0x80, "lo")]));
  parser.push(Buffer.concat([Buffer.from([0x88, 4, 0x03, 0xe8]), Buffer.from("ok")]));
  expect(got).toEqual([
    { kind: "ping", data: "p" },
    { kind: "msg", data: "hello", binary: false },
    { kind: "close", data: "ok", code: 1000 },
  ]);
});

test("protocol errors throw", () => {
  const { parser } = collect();
  expect(() => parser.push(Buffer.from([0x80, 0]))).toThrow();
});
