// What a fuzz target is: an input generator (a fast-check arbitrary), the property every input must
// keep (`check` throws when it does not), and how an input is saved to and read from the corpus.
// The suite runs each target a few thousand times (`*.fuzz.test.ts`); `npm run fuzz` runs each for
// a time budget (tests/fuzz/run.ts) and saves what fails under tests/fuzz/corpus/<target>/.

import type * as fc from "fast-check";

export interface FuzzTarget<I> {
  readonly name: string;
  /** one line for the report: what an input is and what the property is */
  readonly describe: string;
  readonly arbitrary: fc.Arbitrary<I>;
  /** throws (any error) when the property fails for this input */
  check(input: I): void | Promise<void>;
  /** an input as a corpus file: raw bytes for byte parsers (usable by other fuzzers), JSON otherwise */
  save(input: I): { ext: string; bytes: Uint8Array };
  load(fileName: string, bytes: Uint8Array): I;
  /** targets that drive a process or a server start it here, and stop it in `stop` */
  start?(): Promise<void>;
  stop?(): Promise<void>;
  /** whether `check` is async */
  readonly async?: boolean;
}

/** The property failed: what was expected, for the report (never a parser's own error). */
export class PropertyViolation extends Error {
  override name = "PropertyViolation";
}

export function violated(message: string): never {
  throw new PropertyViolation(message);
}

/** Runs `fn`, failing when it takes longer than `limitMs`: a parser that slow on a bounded input hangs. */
export function timed<T>(limitMs: number, what: string, fn: () => T): T {
  const t0 = performance.now();
  const out = fn();
  const ms = performance.now() - t0;
  if (ms > limitMs) violated(`${what} took ${ms.toFixed(0)} ms (limit ${limitMs} ms): a hang on hostile input`);
  return out;
}

/** A short stable name for an input's bytes (FNV-1a, hex). */
export function contentHash(bytes: Uint8Array): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const b of bytes) {
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ b, 0x5bd1e995);
  }
  return (h1 >>> 0).toString(16).padStart(8, "0") + (h2 >>> 0).toString(16).padStart(8, "0");
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export const jsonFile = (v: unknown) => ({ ext: "json", bytes: enc.encode(JSON.stringify(v, null, 1) + "\n") });
export const readJson = <T>(bytes: Uint8Array): T => JSON.parse(dec.decode(bytes)) as T;

/** Uint8Array <-> base64 inside JSON corpus files. */
export const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
export const unb64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
