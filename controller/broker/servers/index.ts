// The real servers the services gateway provisions into, started on loopback in one directory each: what
// the one-machine cluster runs, and what the services tests start.

import { restrictUmask, tightenTree, traverseOnlyDir } from "../../../bus/private-state.ts";
import { join } from "node:path";
import { provisionerVariables } from "../provisioners/from-env.ts";
import { startMysql, type RunningMysql } from "./mysql-server.ts";
import { startPostgres, type RunningPostgres } from "./postgres-server.ts";
import { rabbitmqServerScript, startRabbitmq, type RunningRabbitmq } from "./rabbitmq-server.ts";
import { startRedis, type RunningRedis } from "./redis-server.ts";

export { startMysql, startPostgres, startRabbitmq, startRedis, rabbitmqServerScript };
export type { RunningMysql, RunningPostgres, RunningRabbitmq, RunningRedis };

export type LocalServiceName = "postgres" | "mysql" | "redis" | "rabbitmq";

export interface LocalServices {
  postgres?: RunningPostgres;
  mysql?: RunningMysql;
  redis?: RunningRedis;
  rabbitmq?: RunningRabbitmq;
  /** The SKIFF_SERVICES_* variables that point the broker (provisionersFromEnv) at these servers. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Starts the named servers under `<dir>/<name>` (data kept there across restarts; `durable: false` is for
 * tests). If one fails to start,
 * the ones already started are stopped and the error is thrown.
 */
export async function startLocalServices(dir: string, names: readonly LocalServiceName[], opts: { durable?: boolean } = {}): Promise<LocalServices> {
  const started: LocalServices = { env: {}, stop: async () => {} };
  const stoppers: (() => Promise<void>)[] = [];
  started.stop = async () => {
    await Promise.allSettled(stoppers.splice(0).map((s) => s()));
  };
  // Traversable (not listable) by others: servers that drop root (postgres) must reach their subdirectory.
  restrictUmask();
  traverseOnlyDir(dir, "the service servers' directory");
  // what an older version left readable (logs, configs, data); each server's own files are 0600 from here on
  tightenTree(dir);
  try {
    for (const name of names) {
      const sub = join(dir, name);
      if (name === "postgres") {
        const s = (started.postgres = await startPostgres({ dir: sub, durable: opts.durable ?? true }));
        stoppers.push(s.stop);
        started.env[provisionerVariables.postgres] = s.adminUrl;
      } else if (name === "mysql") {
        const s = (started.mysql = await startMysql({ dir: sub, durable: opts.durable ?? true }));
        stoppers.push(s.stop);
        started.env[provisionerVariables.mysql] = s.adminUrl;
      } else if (name === "redis") {
        const s = (started.redis = await startRedis({ dir: sub, durable: opts.durable ?? true }));
        stoppers.push(s.stop);
        started.env[provisionerVariables.redis] = s.adminUrl;
      } else {
        const s = (started.rabbitmq = await startRabbitmq({ dir: sub, durable: opts.durable ?? true }));
        stoppers.push(s.stop);
        started.env[provisionerVariables.rabbitmq] = s.managementUrl;
        started.env.SKIFF_SERVICES_RABBITMQ_AMQP_PORT = String(s.port);
      }
    }
    return started;
  } catch (err) {
    await started.stop();
    throw err;
  }
}
