import { describe, expect, test } from "bun:test";
import { parseArgs } from "./main.ts";
import { table } from "./src/table.ts";

describe("argument parsing", () => {
  test("positionals, valued and boolean flags, --x=y", () => {
    expect(parseArgs(["hello", "-i", "3", "--json", "--name=web", "-m", "1G"])).toEqual({ positional: ["hello"], flags: { i: "3", json: true, name: "web", m: "1G" } });
  });
  test("-f is a file for push and a yes for delete", () => {
    expect(parseArgs(["-f", "m.yml"], "push").flags.f).toBe("m.yml");
    expect(parseArgs(["app", "-f"], "delete")).toEqual({ positional: ["app"], flags: { f: true } });
    expect(parseArgs(["db", "-f"], "delete-service")).toEqual({ positional: ["db"], flags: { f: true } });
    expect(parseArgs(["pg", "small", "db", "-c", '{"a":1}'], "create-service").flags.c).toBe('{"a":1}');
  });
  test("a flag without its value is a usage error (exit 2)", () => {
    expect(() => parseArgs(["-i"])).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
  test("tables line up like cf's", () => {
    expect(table(["name", "state"], [["a", "started"], ["longer", "stopped"]])).toBe("name     state\na        started\nlonger   stopped");
  });
});
