// The Procfile parser (agent/procfile.ts): random text, mutated Procfiles, and Procfiles written from
// generated process tables. Property: never throws; a table of own string entries whose names match
// the documented pattern; a written Procfile reads back as the table it was written from.

import * as fc from "fast-check";
import { parseProcfile } from "../../../agent/procfile.ts";
import { jsonFile, readJson, timed, violated, type FuzzTarget } from "../lib/fuzz-target.ts";
import { notJsonData } from "../lib/json-data.ts";
import { mutated } from "../lib/mutate.ts";

export type ProcfileInput = { text: string } | { table: [string, string][] };

const enc = new TextEncoder();
const dec = new TextDecoder();
const NAME = /^[A-Za-z0-9_-]+$/;

const procLine = fc.tuple(
  fc.oneof(fc.constantFrom("web", "worker", "__proto__", "constructor", "toString", "#web", "", " web", "we b", "web:", "w\u00e9b"), fc.string({ maxLength: 8 })),
  fc.constantFrom(":", ": ", " : ", "", "::"),
  fc.oneof(fc.constantFrom("bun server.ts", "node app.js --port $PORT", "", "  ", "a: b", "x".repeat(2000)), fc.string({ maxLength: 30 })),
).map(([n, sep, cmd]) => `${n}${sep}${cmd}`);

const command = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim() === s && !/[\r\n]/.test(s));
const table = fc.uniqueArray(fc.tuple(fc.oneof(fc.constantFrom("web", "worker", "__proto__", "constructor", "hasOwnProperty"), fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/)), command), { selector: ([n]) => n, maxLength: 6 });

export const procfileInput: fc.Arbitrary<ProcfileInput> = fc.oneof(
  fc.array(procLine, { maxLength: 12 }).chain((ls) => fc.constantFrom("\n", "\r\n", "\r").map((nl) => ({ text: ls.join(nl) }))),
  mutated(fc.constant(enc.encode("web: bun server.ts\nworker: bun worker.ts\n# comment\n\nrelease: ./migrate\n")), 8).map((b) => ({ text: dec.decode(b) })),
  fc.string({ unit: "binary", maxLength: 200 }).map((text) => ({ text })),
  table.map((t) => ({ table: t })),
);

export function checkProcfile(input: ProcfileInput): void {
  const text = "text" in input ? input.text : input.table.map(([n, c]) => `${n}: ${c}`).join("\n") + "\n";
  const out = timed(1000, "parsing a Procfile", () => parseProcfile(text));
  const dirty = notJsonData(out);
  if (dirty) violated(`the process table is not plain data: ${dirty}`);
  for (const [name, cmd] of Object.entries(out)) {
    if (!NAME.test(name)) violated(`process type ${JSON.stringify(name)} does not match ${NAME}`);
    if (typeof cmd !== "string" || cmd === "" || cmd !== cmd.trim()) violated(`process ${name} has command ${JSON.stringify(cmd)}`);
  }
  if ("table" in input) {
    // order is not part of the contract (a JS object lists integer-like names first)
    const sorted = (t: [string, string][]) => JSON.stringify([...t].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const got = sorted(Object.entries(out));
    const want = sorted(input.table);
    if (got !== want) violated(`written and read back, the Procfile changed:\n want ${want}\n got  ${got}`);
  }
}

export const procfileTarget: FuzzTarget<ProcfileInput> = {
  name: "procfile",
  describe: "agent/procfile.ts on random, mutated and round-tripped Procfiles",
  arbitrary: procfileInput,
  check: checkProcfile,
  save: (i) => ("text" in i ? { ext: "txt", bytes: enc.encode(i.text) } : jsonFile(i)),
  load: (name, bytes) => (name.endsWith(".txt") ? { text: dec.decode(bytes) } : readJson<ProcfileInput>(bytes)),
};
