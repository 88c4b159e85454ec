// The services gateway as its own process: reads config, builds the provisioners and the broker, listens,
// logs `ready`, and stops cleanly on SIGTERM/SIGINT. (The controller may also mount createBroker in-process.)

import { join } from "node:path";
import { createLogger } from "../../bus/log.ts";
import { InsecureStateError, openPrivateState } from "../../bus/private-state.ts";
import { createBroker, defaultDataDir } from "./broker.ts";
import { provisionersFromEnv, provisionerVariables } from "./provisioners/from-env.ts";
import { readOrCreateSecret } from "./servers/managed-process.ts";

const log = createLogger("broker");
const port = Number(process.env.SKIFF_BROKER_PORT ?? 9023);
const username = process.env.SKIFF_BROKER_USER ?? "skiff-broker";
const dataDir = defaultDataDir();
try {
  openPrivateState(dataDir, "the broker's data directory (SKIFF_DATA_DIR/broker)", log);
} catch (err) {
  if (!(err instanceof InsecureStateError)) throw err;
  log.error(err.message);
  process.exit(2);
}
let password = process.env.SKIFF_BROKER_PASS;
if (!password) {
  // Never in the log (logs are shipped and kept): in a file only this user can read, reused next start.
  const file = join(dataDir, "broker-password");
  password = readOrCreateSecret(file);
  log.warn("SKIFF_BROKER_PASS is not set; the broker's password is in a file (mode 0600)", { username, password_file: file });
}
const provisioners = provisionersFromEnv();
if (provisioners.length === 0) log.warn("no services configured", { set: Object.values(provisionerVariables).join(",") });

const app = createBroker({ provisioners, credentials: { username, password }, dataDir, log });
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
