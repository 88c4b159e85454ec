// What an app's environment gets from its service bindings, in Cloud Foundry's shape: VCAP_SERVICES
// ({label: [{name, label, plan, tags, instance_guid, binding_guid, credentials}]}) and the URL variables
// most frameworks read (DATABASE_URL, REDIS_URL, AMQP_URL), from each binding's credentials `uri`. The
// agent builds what apps get with it and the controller what `skiff env` shows, so the two agree. Pure.

import type { ServiceBinding } from "./messages.ts";

/** A binding as VCAP_SERVICES lists it: the bus's fields plus Cloud Foundry's instance and binding names. */
export interface VcapServiceEntry extends ServiceBinding {
  instance_name: string;
  binding_name: null;
}

/** Bindings grouped by label, in the order given; copies, so the result shares nothing with the input. */
export function vcapServices(bindings: readonly ServiceBinding[]): Record<string, VcapServiceEntry[]> {
  const out: Record<string, VcapServiceEntry[]> = {};
  for (const b of bindings)
    (out[b.label] ??= []).push({
      name: b.name,
      instance_name: b.name,
      binding_name: null,
      label: b.label,
      plan: b.plan,
      tags: [...b.tags],
      instance_guid: b.instance_guid,
      binding_guid: b.binding_guid,
      credentials: { ...b.credentials },
    });
  return out;
}

/** Which URL variable a credentials `uri` scheme feeds: databases only for DATABASE_URL (a Redis bound first must not become it). */
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

/** Each URL variable from the first binding (in the order given) whose `uri` scheme feeds it. */
export function serviceUrlVariables(bindings: readonly ServiceBinding[]): Record<string, string> {
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

/**
 * Everything an app's environment gets from its bindings: VCAP_SERVICES (always, "{}" when none) and
 * the URL variables, except those set by hand in `handSet` (the app's own env), which win.
 */
export function serviceEnvironment(bindings: readonly ServiceBinding[], handSet: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = { VCAP_SERVICES: JSON.stringify(vcapServices(bindings)) };
  for (const [name, uri] of Object.entries(serviceUrlVariables(bindings))) if (handSet[name] === undefined) env[name] = uri;
  return env;
}
