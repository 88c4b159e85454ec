// The health manager as its own process. It shares the controller's database (desired state,
// crash records, the leader lease, the URL-signing secret) and places instances itself with the
// same placement and launcher code the controller uses, hearing agents on the bus.
// Env: SKIFF_NATS_URL, SKIFF_DATA_DIR / SKIFF_DATABASE_URL (the controller's), SKIFF_CONTROLLER_URL
// (the URL agents fetch droplets from).

import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { connectBus, createLogger, type Bus, type Logger } from "../bus/index.ts";
import { openPrivateState } from "../bus/private-state.ts";
import { natsCredentialsFromEnv, type NatsCredentials } from "../bus/nats-transport.ts";
import { AgentRegistry } from "./src/agent-registry.ts";
import { UrlSigner } from "./src/blobstore.ts";
import { openDatabase } from "./src/db/open.ts";
import { postgresUrlWithTls } from "./src/db/postgres-tls.ts";
import { Store } from "./src/db/store.ts";
import { ActualState } from "./src/health/actual-state.ts";
import { HealthManager, type HealthManagerOptions } from "./src/health/manager.ts";
import { InstanceLauncher } from "./src/launcher.ts";
import { feedState } from "./src/state-feed.ts";
import { CredentialBox } from "./src/services/credential-box.ts";
import { ServiceGateway } from "./src/services/service-gateway.ts";
import { ServiceStore } from "./src/services/service-store.ts";
import { runUntilSignalled } from "./src/run-until-signalled.ts";

export interface HealthConfig {
  natsUrl: string;
  /** its NATS user (a password or a .creds file) and TLS with this host's certificate (issue 27) */
  nats?: NatsCredentials;
  dataDir: string;
  databaseUrl?: string;
  controllerUrl: string;
  /** base64 AES key for stored service credentials; default <dataDir>/credentials.key (the controller's) */
  credentialsKey?: string;
  health?: Partial<HealthManagerOptions>;
}

export function healthConfigFromEnv(env = process.env): HealthConfig {
  return {
    natsUrl: env.SKIFF_NATS_URL || "nats://127.0.0.1:4222",
    nats: natsCredentialsFromEnv(env),
    dataDir: env.SKIFF_DATA_DIR || "./.skiff/controller",
    databaseUrl: postgresUrlWithTls(env.SKIFF_DATABASE_URL || undefined, env.SKIFF_TLS_CA || undefined),
    controllerUrl: env.SKIFF_CONTROLLER_URL || "http://127.0.0.1:9022",
    credentialsKey: env.SKIFF_CREDENTIALS_KEY || undefined,
  };
}

export async function startHealthProcess(config: HealthConfig, opts: { bus?: Bus; log?: Logger } = {}) {
  const log = opts.log ?? createLogger("health");
  // it may be the first process on a new data directory (the controller's, shared)
  openPrivateState(config.dataDir, "the health manager's data directory (SKIFF_DATA_DIR, the controller's)", log);
  const db = await openDatabase({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  const store = new Store(db);
  const secret = await store.settingOrInit("url_signing_secret", () => randomBytes(32).toString("hex"));
  const bus = opts.bus ?? (await connectBus({ servers: config.natsUrl.split(","), name: `health-${hostname()}-${process.pid}`, ...config.nats }, log));
  const agents = new AgentRegistry();
  const actual = new ActualState();
  const feed = feedState(bus, agents, actual);
  // the same bindings the controller would send: it needs the controller's credentials key
  const box = await CredentialBox.open({ dataDir: config.dataDir, keyBase64: config.credentialsKey });
  const services = new ServiceGateway({ store, services: new ServiceStore(db), box, log: log.child("services") });
  const launcher = new InstanceLauncher({ bus, store, agents, signer: new UrlSigner(secret, config.controllerUrl), log: log.child("launcher"), services });
  const holder = `health-${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
  const hm = new HealthManager({ bus, store, actual, launcher, log }, { holder, ...config.health });
  hm.start();
  log.info("ready", { holder });
  return {
    hm,
    async stop() {
      await hm.stop();
      feed.unsubscribe();
      if (!opts.bus) await bus.close().catch(() => undefined);
      await db.close();
    },
  };
}

if (import.meta.main) {
  const log = createLogger("health");
  runUntilSignalled(log, () => startHealthProcess(healthConfigFromEnv(), { log }));
}
