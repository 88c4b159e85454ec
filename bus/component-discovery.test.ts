import { describe, expect, test } from "bun:test";
import { createBus } from "./bus.ts";
import { MemoryBroker } from "./memory-transport.ts";
import { memoryLogger } from "./log.ts";
import { discoverComponents, identityFromClientName, serveComponentDiscovery } from "./component-discovery.ts";
import { Subjects } from "./subjects.ts";
import type { ComponentAnnounce } from "./messages.ts";

describe("component discovery (issue 3: the counters show rejected messages)", () => {
  test("the type is the client name up to its first dash", () => {
    expect(identityFromClientName("agent-3f2a")).toEqual({ type: "agent", uuid: "agent-3f2a" });
    expect(identityFromClientName("controller-vm-12")).toEqual({ type: "controller", uuid: "controller-vm-12" });
    expect(identityFromClientName("solo")).toEqual({ type: "solo", uuid: "solo" });
  });

  test("announces at start, answers discover with every subscription and its counts", async () => {
    const broker = new MemoryBroker();
    const component = createBus(broker.transport(), memoryLogger());
    const operator = createBus(broker.transport(), memoryLogger());
    const announced: ComponentAnnounce[] = [];
    operator.subscribe(Subjects.componentAnnounce, "vcap.component.announce", (m) => void announced.push(m));

    let clock = 1_000_000;
    component.subscribe(Subjects.deaLocate, "dea.locate", () => {});
    component.subscribe(Subjects.routerRegister, "router.register", () => {});
    serveComponentDiscovery(component, { type: "agent", uuid: "agent-1" }, () => clock);
    await Bun.sleep(5);
    expect(announced.map((a) => a.uuid)).toEqual(["agent-1"]);

    operator.publishRaw(Subjects.routerRegister, new Uint8Array([0xff, 0x00]));
    operator.publish(Subjects.deaLocate, "dea.locate", {});
    await Bun.sleep(5);
    clock += 2_500;
    const [reply] = await discoverComponents(operator, 100);
    expect(reply).toMatchObject({ type: "agent", uuid: "agent-1", start: 1_000_000, uptime: 2.5 });
    expect(reply!.bus.rejected).toMatchObject({ "router.register": 1, "dea.locate": 0 });
    expect(reply!.bus.accepted).toMatchObject({ "router.register": 0, "dea.locate": 1 });
    // the discover subscription itself is listed, request inboxes are not
    expect(Object.keys(reply!.bus.accepted)).toContain(Subjects.componentDiscover);
    expect(Object.keys(reply!.bus.accepted).some((k) => k.startsWith("_INBOX."))).toBe(false);
  });

  test("garbage on vcap.component.discover is counted and answered with nothing", async () => {
    const broker = new MemoryBroker();
    const component = createBus(broker.transport(), memoryLogger());
    const operator = createBus(broker.transport(), memoryLogger());
    serveComponentDiscovery(component, { type: "router", uuid: "router-1" });
    let replies = 0;
    const inbox = operator.inbox();
    operator.subscribeRaw(inbox, () => void replies++);
    operator.publishRaw(Subjects.componentDiscover, new Uint8Array([0x83, 0x01, 0x02, 0x03]), inbox);
    await Bun.sleep(5);
    expect(replies).toBe(0);
    expect(component.counters().rejected[Subjects.componentDiscover]).toBe(1);
  });

  test("replies to many requests are counted under one key, so the counters stay bounded", async () => {
    const broker = new MemoryBroker();
    const a = createBus(broker.transport(), memoryLogger());
    const b = createBus(broker.transport(), memoryLogger());
    serveComponentDiscovery(b, { type: "agent", uuid: "agent-2" });
    for (let i = 0; i < 20; i++) await discoverComponents(a, 20);
    const keys = Object.keys(a.counters().accepted);
    expect(keys.filter((k) => k.startsWith("_INBOX")).length).toBe(1);
    expect(a.counters().accepted["_INBOX"]).toBe(20);
  });
});
