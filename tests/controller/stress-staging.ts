// Manual stress run (not a test): many push cycles against a listening controller on the memory bus.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBus, MemoryBroker, memoryLogger } from "../../bus/index.ts";
import { startController } from "../../controller/main.ts";
import { FakeAgent } from "./fake-agent.ts";

const dir = mkdtempSync(join(tmpdir(), "skiff-stress-"));
const broker = new MemoryBroker();
const c = await startController({ natsUrl: "", port: 0, dataDir: dir, domain: "s.test", adminPassword: "adminpass", embedHealthManager: true, health: { intervalMs: 100, startGraceMs: 0 } }, { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger() });
const agent = new FakeAgent(createBus(broker.transport(), memoryLogger()), "a1", (r) => fetch(r)).begin();
const tok = (await (await fetch(c.url + "/v3/tokens", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "adminpass" }) })).json()).access_token;
const h = { authorization: `bearer ${tok}` };
const p = Bun.spawn(["tar", "-czf", "-", "-C", "examples/hello", "."], { stdout: "pipe" });
const pkg = new Uint8Array(await new Response(p.stdout).arrayBuffer());
const mode = process.argv[2] ?? "all";
for (let i = 0; i < Number(process.argv[3] ?? 20); i++) {
  const app = await (await fetch(c.url + "/v3/apps", { method: "POST", headers: { ...h, "content-type": "application/json" }, body: JSON.stringify({ name: `app${i}` }) })).json();
  await (await fetch(`${c.url}/v3/apps/${app.guid}/bits`, { method: "PUT", headers: h, body: pkg })).text();
  let poll: Promise<unknown> = Promise.resolve();
  if (mode !== "nopoll") {
    const pos = (await (await fetch(`${c.url}/v3/apps/${app.guid}/logs/poll`, { headers: h })).json()).next;
    poll = fetch(`${c.url}/v3/apps/${app.guid}/logs/poll?after=${pos}&wait=${process.env.W ?? 5}`, { headers: h }).then((r) => r.json());
  }
  await (await fetch(`${c.url}/v3/apps/${app.guid}/actions/start`, { method: "POST", headers: h })).text();
  for (let k = 0; k < 100 && agent.running(app.guid).length === 0; k++) await Bun.sleep(20);
  await poll;
  console.log(i, agent.running(app.guid).length);
}
await c.stop();
process.exit(0);
