// Builds the provisioners an operator configured, one per admin URL in the environment. A service whose
// variable is unset is simply not offered.

import type { Provisioner } from "../types.ts";
import { MysqlProvisioner } from "./mysql.ts";
import { PostgresProvisioner } from "./postgres.ts";
import { RabbitmqProvisioner } from "./rabbitmq.ts";
import { RedisProvisioner } from "./redis.ts";

export const provisionerVariables = {
  postgres: "SKIFF_SERVICES_POSTGRES_URL",
  mysql: "SKIFF_SERVICES_MYSQL_URL",
  redis: "SKIFF_SERVICES_REDIS_URL",
  rabbitmq: "SKIFF_SERVICES_RABBITMQ_URL",
} as const;

export function provisionersFromEnv(env: Record<string, string | undefined> = process.env): Provisioner[] {
  const out: Provisioner[] = [];
  const pg = env[provisionerVariables.postgres];
  const my = env[provisionerVariables.mysql];
  const rd = env[provisionerVariables.redis];
  const mq = env[provisionerVariables.rabbitmq];
  if (pg) out.push(new PostgresProvisioner({ adminUrl: pg }));
  if (my) out.push(new MysqlProvisioner({ adminUrl: my }));
  if (rd) out.push(new RedisProvisioner({ adminUrl: rd }));
  if (mq) out.push(new RabbitmqProvisioner({ managementUrl: mq, amqp: env.SKIFF_SERVICES_RABBITMQ_AMQP_PORT ? { port: Number(env.SKIFF_SERVICES_RABBITMQ_AMQP_PORT) } : undefined }));
  return out;
}
