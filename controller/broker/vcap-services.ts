// Turns an app's service bindings into the environment Cloud Foundry gives apps: VCAP_SERVICES
// ({label: [{name, label, plan, tags, instance_guid, binding_guid, credentials}]}) and the conventional
// URL variables (DATABASE_URL, REDIS_URL, AMQP_URL) that most frameworks read. Pure.

import type { Credentials } from "./types.ts";

export interface BoundService {
  /** The service instance's name, as the user gave it (`skiff create-service postgresql shared mydb`). */
  name: string;
  /** The catalog service's name (CF's "label"), e.g. "postgresql". */
  label: string;
  plan: string;
  tags?: string[];
  instanceGuid: string;
  bindingGuid: string;
  credentials: Credentials | Record<string, unknown>;
}

export interface VcapServiceEntry {
  name: string;
  label: string;
  plan: string;
  tags: string[];
  instance_guid: string;
  binding_guid: string;
  instance_name: string;
  binding_name: null;
  credentials: Record<string, unknown>;
}

export function vcapServices(bindings: readonly BoundService[]): Record<string, VcapServiceEntry[]> {
  const out: Record<string, VcapServiceEntry[]> = {};
  for (const b of bindings) {
    (out[b.label] ??= []).push({
      name: b.name,
      label: b.label,
      plan: b.plan,
      tags: [...(b.tags ?? [])],
      instance_guid: b.instanceGuid,
      binding_guid: b.bindingGuid,
      instance_name: b.name,
      binding_name: null,
      credentials: { ...b.credentials },
    });
  }
  return out;
}

/**
 * Which URL variable a credentials `uri` scheme feeds; the first binding (in the order given) wins. The
 * DATABASE_URL schemes are the agent's (agent/instance-env.ts sets the variable apps actually get), so
 * `skiff env` and the app agree; vcap-services.test.ts checks it.
 */
export const urlVariablesByScheme: Readonly<Record<string, string>> = {
  postgres: "DATABASE_URL",
  postgresql: "DATABASE_URL",
  mysql: "DATABASE_URL",
  mysql2: "DATABASE_URL",
  mariadb: "DATABASE_URL",
  mongodb: "DATABASE_URL",
  "mongodb+srv": "DATABASE_URL",
  redis: "REDIS_URL",
  rediss: "REDIS_URL",
  amqp: "AMQP_URL",
  amqps: "AMQP_URL",
};

export function serviceUrlVariables(bindings: readonly BoundService[]): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const b of bindings) {
    const uri = b.credentials.uri;
    if (typeof uri !== "string") continue;
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1]?.toLowerCase();
    const name = scheme ? urlVariablesByScheme[scheme] : undefined;
    if (name && !(name in vars)) vars[name] = uri;
  }
  return vars;
}

/** Everything an app's environment gets from its bindings: VCAP_SERVICES (always, "{}" when none) and URL variables. */
export function serviceEnvironment(bindings: readonly BoundService[]): Record<string, string> {
  return { VCAP_SERVICES: JSON.stringify(vcapServices(bindings)), ...serviceUrlVariables(bindings) };
}
