import { describe, expect, test } from "bun:test";
import { Instance, InvalidTransitionError, matchesFilter } from "./instance.ts";
import { startFixture } from "./fixtures/start-message.ts";


describe("Instance state machine", () => {
  test("follows STARTING → RUNNING → STOPPING → STOPPED", () => {
    const i = new Instance("i1", startFixture(), 1000);
    expect(i.state).toBe("STARTING");
    expect(i.stateTimestamp).toBe(1);
    i.moveTo("RUNNING", 2000).moveTo("STOPPING", 3000).moveTo("STOPPED", 4000);
    expect(i.state).toBe("STOPPED");
    expect(i.stateTimestamp).toBe(4);
    expect(i.alive).toBe(false);
  });

  test("can crash from any live state, and nothing follows an end", () => {
    for (const path of [[], ["RUNNING"], ["STOPPING"], ["RUNNING", "STOPPING"]] as const) {
      const i = new Instance("i", startFixture());
      for (const s of path) i.moveTo(s);
      i.moveTo("CRASHED");
      expect(() => i.moveTo("RUNNING")).toThrow(InvalidTransitionError);
    }
  });

  test("refuses skipping or going back", () => {
    const i = new Instance("i", startFixture());
    expect(() => i.moveTo("STOPPED")).toThrow(/STARTING to STOPPED/);
    i.moveTo("RUNNING");
    expect(i.canMoveTo("STARTING")).toBe(false);
  });
});

describe("matchesFilter", () => {
  const i = new Instance("id-7", startFixture({ index: 2 }));
  test.each([
    [{ droplet: "app1" }, true],
    [{ droplet: "other" }, false],
    [{ droplet: "app1", version: "v1" }, true],
    [{ droplet: "app1", version: "v2" }, false],
    [{ droplet: "app1", indices: [1, 2] }, true],
    [{ droplet: "app1", indices: [0] }, false],
    [{ droplet: "app1", instances: ["id-7"] }, true],
    [{ droplet: "app1", instances: ["id-8"] }, false],
    [{ droplet: "app1", states: ["STARTING" as const] }, true],
    [{ droplet: "app1", states: ["RUNNING" as const] }, false],
  ])("%o → %p", (filter, expected) => expect(matchesFilter(i, filter)).toBe(expected));
});
