import { expect, test } from "bun:test";
import { ReplacementWatch } from "./evacuation.ts";

const settled = async (p: Promise<void>) => Promise.race([p.then(() => true), Bun.sleep(5).then(() => false)]);

test("an evacuation is done once each instance's replacement is heard from elsewhere (issue 6)", async () => {
  const w = new ReplacementWatch(
    [
      { appId: "a", index: 0, instanceId: "mine0" },
      { appId: "a", index: 1, instanceId: "mine1" },
      { appId: "b", index: 0, instanceId: "mine2" },
    ],
    "me",
  );
  // our own re-registration and heartbeat, a STARTING replacement, another index: not replacements
  w.onRegister({ host: "h", port: 1, uris: [], app: "a", private_instance_id: "mine0", private_instance_index: "0" });
  w.onHeartbeat({ dea: "me", droplets: [{ droplet: "a", version: "v", instance: "mine1", index: 1, state: "RUNNING", state_timestamp: 0 }] });
  w.onHeartbeat({ dea: "other", droplets: [{ droplet: "a", version: "v", instance: "x", index: 1, state: "STARTING", state_timestamp: 0 }] });
  w.onRegister({ host: "h", port: 2, uris: [], app: "a", private_instance_id: "x", private_instance_index: "7" });
  expect(w.pending).toBe(3);
  expect(await settled(w.done)).toBe(false);

  w.onRegister({ host: "h", port: 2, uris: [], app: "a", private_instance_id: "new0", private_instance_index: "0" });
  w.onHeartbeat({ dea: "other", droplets: [{ droplet: "a", version: "v", instance: "new1", index: 1, state: "RUNNING", state_timestamp: 0 }] });
  expect(w.pending).toBe(1);
  w.onHeartbeat({ dea: "other", droplets: [{ droplet: "b", version: "v", instance: "new2", index: 0, state: "RUNNING", state_timestamp: 0 }] });
  expect(await settled(w.done)).toBe(true);
});

test("nothing to evacuate is done at once", async () => {
  expect(await settled(new ReplacementWatch([], "me").done)).toBe(true);
});
