import { describe, expect, test } from "bun:test";
import { decode, encode } from "../bus/index.ts";
import { buildAdvertise, buildExited, buildFindDropletReply, buildHeartbeat, buildShutdown } from "./beacons.ts";
import { Instance } from "./instance.ts";
import { buildRouteMessage, diffRoutes } from "./routes.ts";
import { startFixture } from "./fixtures/start-message.ts";

const identity = { id: "agent-1", ip: "10.0.0.5", zone: "z1", stacks: ["bun"], memoryMb: 1024, diskMb: 4096 };

function instances(): Instance[] {
  const a = new Instance("a", startFixture({ droplet: "app1", index: 0 }), 1000).moveTo("RUNNING", 2000);
  const b = new Instance("b", startFixture({ droplet: "app1", index: 1, limits: { mem: 128, disk: 100, fds: 10 } }), 1000);
  const c = new Instance("c", startFixture({ droplet: "app2" }), 1000).moveTo("CRASHED", 3000);
  return [a, b, c];
}

describe("beacons", () => {
  test("heartbeat lists every instance with its state, and validates on the bus", () => {
    const hb = buildHeartbeat("agent-1", instances());
    expect(hb.droplets.map((d) => [d.instance, d.state])).toEqual([["a", "RUNNING"], ["b", "STARTING"], ["c", "CRASHED"]]);
    expect(decode("dea.heartbeat", encode("dea.heartbeat", hb))).toEqual(hb);
  });

  test("advertise subtracts live instances' memory and disk and counts instances per app", () => {
    const ad = buildAdvertise(identity, instances());
    expect(ad.available_memory).toBe(1024 - 256 - 128);
    expect(ad.available_disk).toBe(4096 - 1024 - 100);
    expect(ad.app_id_to_count).toEqual({ app1: 2 });
    expect(ad.placement_properties.zone).toBe("z1");
    expect(decode("dea.advertise", encode("dea.advertise", ad))).toEqual(ad);
  });

  test("shutdown and exited carry Cloud Foundry's fields", () => {
    expect(buildShutdown("agent-1", instances())).toEqual({ id: "agent-1", app_id_to_count: { app1: 2 } });
    const ex = buildExited(instances()[2]!, "CRASHED", 1, "exited with status 1", 5000);
    expect(ex).toMatchObject({ droplet: "app2", instance: "c", reason: "CRASHED", exit_status: 1, crash_timestamp: 5 });
    expect(decode("droplet.exited", encode("droplet.exited", ex))).toEqual(ex);
  });

  test("find.droplet reply includes stats only when asked", () => {
    const [a] = instances();
    a!.port = 61001;
    a!.startedAt = 1000;
    a!.usage = { cpu: 12.5, mem: 50_000_000, disk: 1_000_000 };
    expect(buildFindDropletReply(identity, a!, false).stats).toBeUndefined();
    const r = buildFindDropletReply(identity, a!, true, 11_000);
    expect(r.stats).toMatchObject({ host: "10.0.0.5", port: 61001, uptime: 10, usage: { cpu: 12.5, mem: 50_000_000 } });
    expect(r.stats!.quotas.mem).toBe(256 * 1024 * 1024);
    expect(decode("dea.find.droplet.reply", encode("dea.find.droplet.reply", r))).toEqual(r);
  });
});

describe("routes", () => {
  test("router.register names the agent's address, the instance and its index as a string", () => {
    const i = new Instance("i9", startFixture({ droplet: "app1", index: 4 }));
    i.port = 61002;
    const m = buildRouteMessage("10.0.0.5", i, ["a.example.com"]);
    expect(m).toEqual({ host: "10.0.0.5", port: 61002, uris: ["a.example.com"], app: "app1", private_instance_id: "i9", private_instance_index: "4", tags: { component: "skiff-agent" } });
    expect(decode("router.register", encode("router.register", m))).toEqual(m);
  });
  test("dea.update changes only what differs", () => {
    expect(diffRoutes(["a", "b"], ["b", "c"])).toEqual({ added: ["c"], removed: ["a"] });
    expect(diffRoutes(["a"], ["a"])).toEqual({ added: [], removed: [] });
  });
});
