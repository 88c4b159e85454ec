// The Cloud Controller process: reads its environment once, builds the store, blobstore, bus
// feeds, stager, launcher and API (and the health manager when SKIFF_EMBED_HEALTH_MANAGER=1),
// starts them in order and stops them on SIGTERM/SIGINT. The only place that wires things.

import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { connectBus, createLogger, type Bus, type Logger } from "../bus/index.ts";
import { openPrivateState } from "../bus/private-state.ts";
import { natsCredentialsFromEnv, type NatsCredentials } from "../bus/nats-transport.ts";
import { AgentRegistry } from "./src/agent-registry.ts";
import { buildApi } from "./src/api/server.ts";
import { DEFAULT_LIMITS, loginLimitsFromEnv, type ControllerContext, type Limits } from "./src/api/context.ts";
import { Blobstore, UrlSigner } from "./src/blobstore.ts";
import { BlobSweeper } from "./src/blob-sweep.ts";
import { bootstrap } from "./src/bootstrap.ts";
import { openDatabase } from "./src/db/open.ts";
import { postgresUrlWithTls } from "./src/db/postgres-tls.ts";
import { Store } from "./src/db/store.ts";
import { ActualState } from "./src/health/actual-state.ts";
import { HealthManager, type HealthManagerOptions } from "./src/health/manager.ts";
import { InstanceLauncher } from "./src/launcher.ts";
import { Stager } from "./src/stager.ts";
import { TaskTracker } from "./src/tasks/task-tracker.ts";
import { feedState } from "./src/state-feed.ts";
import { LogRelay } from "./src/log-relay.ts";
import { MetricsCollector } from "./src/metrics/metrics-collector.ts";
import { DEFAULT_METRICS, metricsConfigFromEnv, type MetricsConfig } from "./src/metrics/metrics-config.ts";
import { CredentialBox } from "./src/services/credential-box.ts";
import { ServiceGateway, type GatewayOptions } from "./src/services/service-gateway.ts";
import { ServiceStore } from "./src/services/service-store.ts";
import { runUntilSignalled } from "./src/run-until-signalled.ts";

export interface ControllerConfig {
  natsUrl: string;
  /** its NATS user (a password or a .creds file) and TLS with this host's certificate (issue 27) */
  nats?: NatsCredentials;
  /** HTTPS for the API and blob transfers: this host's certificate and key (SKIFF_TLS_CERT, SKIFF_TLS_KEY); SIGHUP reloads them */
  tls?: { certFile: string; keyFile: string };
  /** 0 picks a free port */
  port: number;
  dataDir: string;
  databaseUrl?: string;
  domain: string;
  adminPassword?: string;
  embedHealthManager: boolean;
  /** the URL agents reach this controller at (signed blob URLs); default http://127.0.0.1:<port> */
  publicUrl?: string;
  limits?: Partial<Limits>;
  health?: Partial<HealthManagerOptions>;
  findTimeoutMs?: number;
  /** base64 of a 32-byte AES key for stored service credentials; default <dataDir>/credentials.key */
  credentialsKey?: string;
  /** broker client timeouts and polling (tests shorten them) */
  services?: GatewayOptions;
  /** names this controller's stagings across restarts; default controller-<host>-<port> (with port 0, per process) */
  stagerId?: string;
  /** how often unreferenced blobs are deleted, and how old they must be */
  blobSweep?: { intervalMs?: number; graceMs?: number };
  /** the console's metrics history: how often, and where the routers' /metrics are */
  metrics?: Partial<MetricsConfig>;
}

export function configFromEnv(env = process.env): ControllerConfig {
  return {
    natsUrl: env.SKIFF_NATS_URL || "nats://127.0.0.1:4222",
    nats: natsCredentialsFromEnv(env),
    tls: env.SKIFF_TLS_CERT && env.SKIFF_TLS_KEY ? { certFile: env.SKIFF_TLS_CERT, keyFile: env.SKIFF_TLS_KEY } : undefined,
    port: Number(env.SKIFF_CONTROLLER_PORT || 9022),
    dataDir: env.SKIFF_DATA_DIR || "./.skiff/controller",
    databaseUrl: postgresUrlWithTls(env.SKIFF_DATABASE_URL || undefined, env.SKIFF_TLS_CA || undefined),
    domain: (env.SKIFF_DOMAIN || "skiff.localhost").toLowerCase(),
    adminPassword: env.SKIFF_BOOTSTRAP_ADMIN_PASSWORD || undefined,
    embedHealthManager: env.SKIFF_EMBED_HEALTH_MANAGER === "1",
    publicUrl: env.SKIFF_CONTROLLER_PUBLIC_URL || undefined,
    credentialsKey: env.SKIFF_CREDENTIALS_KEY || undefined,
    limits: loginLimitsFromEnv(env),
    metrics: metricsConfigFromEnv(env),
  };
}

/** Bun.serve's TLS from the certificate and key files, read now (a reload reads them again). */
function serverTls(tls: ControllerConfig["tls"]): { tls?: { cert: string; key: string } } {
  return tls ? { tls: { cert: readFileSync(tls.certFile, "utf8"), key: readFileSync(tls.keyFile, "utf8") } } : {};
}

export interface RunningController {
  port: number;
  url: string;
  ctx: ControllerContext;
  app: ReturnType<typeof buildApi>;
  health?: HealthManager;
  sweeper: BlobSweeper;
  /** the generated bootstrap admin password, when this start created the admin with one */
  generatedPassword?: string;
  stop(): Promise<void>;
}

/** Builds and starts a controller. Pass `bus` to run on an existing (e.g. in-memory) bus. */
export async function startController(config: ControllerConfig, opts: { bus?: Bus; log?: Logger; listen?: boolean } = {}): Promise<RunningController> {
  const log = opts.log ?? createLogger("controller");
  openPrivateState(config.dataDir, "the controller's data directory (SKIFF_DATA_DIR)", log);
  const db = await openDatabase({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  const store = new Store(db);
  const boot = await bootstrap(store, { adminPassword: config.adminPassword, domain: config.domain });
  const bus = opts.bus ?? (await connectBus({ servers: config.natsUrl.split(","), name: `controller-${hostname()}-${process.pid}`, ...config.nats }, log));
  const blobs = new Blobstore(join(config.dataDir, "blobs"));

  const agents = new AgentRegistry();
  const actual = new ActualState();
  // The signer needs the port; with port 0 it is known only after listening, so it is built late.
  let signer!: UrlSigner;
  const signerRef = {
    sign: (m: "GET" | "PUT", p: string) => signer.sign(m, p),
    verify: (m: string, p: string, e: string | null, s: string | null) => signer.verify(m, p, e, s),
  } as unknown as UrlSigner;
  const box = await CredentialBox.open({ dataDir: config.dataDir, keyBase64: config.credentialsKey });
  const services = new ServiceGateway({ store, services: new ServiceStore(db), box, log: log.child("services") }, config.services);
  await services.failInterrupted();
  const launcher = new InstanceLauncher({ bus, store, agents, signer: signerRef, log: log.child("launcher"), services });
  let health: HealthManager | undefined;
  const pokeHealth = () => void health?.poke();
  // the stager's id outlives a restart (host and configured port), so the next start knows its leftovers
  const stagerId = config.stagerId ?? `controller-${hostname()}-${config.port || `pid${process.pid}`}`;
  const stager = new Stager({ bus, store, agents, signer: signerRef, blobs, log: log.child("stager"), onStaged: pokeHealth, id: stagerId });
  // before serving: a staging started by this start must not be taken for a leftover
  await stager.failInterrupted();
  const tasks = new TaskTracker({ bus, store, agents, launcher, log: log.child("tasks") });
  const ctx: ControllerContext = {
    store, bus, blobs, signer: signerRef, agents, actual, launcher, stager, log, domain: config.domain, services, tasks,
    limits: { ...DEFAULT_LIMITS, ...config.limits }, pokeHealth, findTimeoutMs: config.findTimeoutMs ?? 600, version: "0.1.0",
  };
  const logRelay = new LogRelay(bus);
  const metrics = new MetricsCollector({ bus, store, actual, log: log.child("metrics"), findTimeoutMs: ctx.findTimeoutMs }, { ...DEFAULT_METRICS, ...config.metrics });
  const app = buildApi(ctx, logRelay, metrics);
  const feed = feedState(bus, agents, actual);
  const sweeper = new BlobSweeper({ store, blobs, log: log.child("blobs"), inUse: () => stager.blobsInUse() }, config.blobSweep);

  let port = config.port;
  if (opts.listen !== false) {
    const listen = (p: number) =>
      app.listen({ port: p, hostname: "0.0.0.0", maxRequestBodySize: ctx.limits.packageBytes + 1024 * 1024, idleTimeout: 60, reusePort: true, ...serverTls(config.tls) });
    listen(config.port);
    port = app.server!.port!;
    if (config.tls) {
      // A rotated certificate without a moment of downtime: a second listener on the same port (SO_REUSEPORT)
      // with the new files takes new connections, then the old one stops once its requests are done.
      const { certFile } = config.tls;
      process.on("SIGHUP", () => {
        const old = app.server;
        try {
          listen(port);
          log.info("reloaded the TLS certificate", { cert: certFile });
          void old?.stop();
        } catch (err) {
          log.error("could not reload the TLS certificate; still serving the old one", { cert: certFile, error: err });
        }
      });
    }
  }
  const url = config.publicUrl ?? `${config.tls ? "https" : "http"}://127.0.0.1:${port}`;
  signer = new UrlSigner(boot.signingSecret, url);

  if (config.embedHealthManager) {
    health = new HealthManager({ bus, store, actual, launcher, log: log.child("health") }, { holder: `controller-${hostname()}-${process.pid}-${port}`, ...config.health });
    health.start();
  }
  if (boot.generatedPassword) {
    // printed once, on the start that created the admin; only its hash is stored
    process.stdout.write(`\n  bootstrap admin created: user "admin", password "${boot.generatedPassword}" (shown once; store it now)\n\n`);
  }
  sweeper.start();
  metrics.start();
  tasks.start();
  log.info("ready", { port, url, domain: config.domain, health_manager: config.embedHealthManager ? "embedded" : "external" });

  return {
    port, url, ctx, app, health, sweeper, generatedPassword: boot.generatedPassword,
    async stop() {
      await health?.stop();
      await tasks.stop();
      await sweeper.stop();
      await metrics.stop();
      // give running broker calls a moment to record their outcome; an unfinished one reads failed next start
      await Promise.race([services.settled(), Bun.sleep(3000)]);
      services.stop(); // the orphan retries' timer; the next start resumes them from the database
      feed.unsubscribe();
      if (app.server) await app.stop().catch(() => undefined);
      logRelay.close();
      if (!opts.bus) await bus.close().catch(() => undefined);
      await db.close();
    },
  };
}

if (import.meta.main) {
  const log = createLogger("controller");
  const config = configFromEnv();
  runUntilSignalled(log, () => startController(config, { log }));
}
