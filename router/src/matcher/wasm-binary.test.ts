import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { findMatcherWasm } from "./wasm-matcher.ts";
import { SHARED_MEMORY_MAX_PAGES, shareMatcherBinary, WasmBinaryError } from "./wasm-binary.ts";

describe("shareMatcherBinary (issue 16)", () => {
  const bytes = readFileSync(findMatcherWasm());

  test("the writer's module imports a shared memory with a maximum; the reader's has no data segments", () => {
    const writer = shareMatcherBinary(bytes, false);
    const reader = shareMatcherBinary(bytes, true);
    for (const b of [writer, reader]) {
      const imports = WebAssembly.Module.imports(new WebAssembly.Module(b.bytes));
      expect(imports).toEqual([{ module: "env", name: "memory", kind: "memory" }]);
    }
    expect(reader.minPages).toBe(writer.minPages);
    expect(reader.bytes.length).toBeLessThan(writer.bytes.length);
    // a non-shared memory is refused by the shared import, a shared one accepted
    const writerModule = new WebAssembly.Module(writer.bytes);
    expect(() => new WebAssembly.Instance(writerModule, { env: { memory: new WebAssembly.Memory({ initial: writer.minPages, maximum: SHARED_MEMORY_MAX_PAGES }) } })).toThrow();
    const memory = new WebAssembly.Memory({ initial: writer.minPages, maximum: SHARED_MEMORY_MAX_PAGES, shared: true });
    new WebAssembly.Instance(writerModule, { env: { memory } });
    // instantiating the reader over the writer's memory changes none of its bytes
    const before = new Uint8Array(memory.buffer).slice();
    new WebAssembly.Instance(new WebAssembly.Module(reader.bytes), { env: { memory } });
    expect(Buffer.compare(Buffer.from(new Uint8Array(memory.buffer)), Buffer.from(before))).toBe(0);
  });

  test("a module without a memory import (built before --import-memory) is refused with how to rebuild it", () => {
    // the smallest module: magic and version, no sections
    expect(() => shareMatcherBinary(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), false)).toThrow(/bash wasm\/build.sh/);
    expect(() => shareMatcherBinary(new Uint8Array([1, 2, 3]), false)).toThrow(WasmBinaryError);
  });
});
