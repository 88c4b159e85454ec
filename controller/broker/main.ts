// The services gateway as its own process: reads config, builds the provisioners and the broker, listens,
// logs `ready`, and stops cleanly on SIGTERM/SIGINT. (The controller may also mount createBroker in-process.)

import { createLogger } from "../../bus/log.ts";
import { createBroker } from "./broker.ts";
import { provisionersFromEnv, provisionerVariables } from "./provisioners/from-env.ts";
import { randomSecret } from "./servers/managed-process.ts";

const log = createLogger("broker");
const port = Number(process.env.SKIFF_BROKER_PORT ?? 9023);
const username = process.env.SKIFF_BROKER_USER ?? "skiff-broker";
let password = process.env.SKIFF_BROKER_PASS;
if (!password) {
  password = randomSecret();
  log.warn("SKIFF_BROKER_PASS is not set; generated a password for this run", { username, password });
}
const provisioners = provisionersFromEnv();
if (provisioners.length === 0) log.warn("no services configured", { set: Object.values(provisionerVariables).join(",") });

const app = createBroker({ provisioners, credentials: { username, password }, log });
app.listen({ port, hostname: process.env.SKIFF_BROKER_HOST ?? "127.0.0.1" });
log.info("ready", { port, services: provisioners.map((p) => p.service.name).join(",") });

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await app.stop();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
