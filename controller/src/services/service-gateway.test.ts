import { describe, expect, test } from "bun:test";
import { databaseUrl, vcapServices } from "../../../agent/instance-env.ts";
import type { BoundService } from "../../broker/index.ts";
import { servicesForStart } from "./service-gateway.ts";

const bound = (label: string, uri: string): BoundService => ({
  name: `${label}-1`, label, plan: "shared", tags: [label], instanceGuid: `i-${label}`, bindingGuid: `b-${label}`, credentials: { uri, password: "pw" },
});

describe("servicesForStart: what dea.<id>.start carries", () => {
  test("the bus's ServiceBinding shape, SQL databases first so the agent's DATABASE_URL is a database's", async () => {
    const list = [bound("redis", "redis://u:pw@h:6379"), bound("postgresql", "postgres://u:pw@h:5432/db"), bound("rabbitmq", "amqp://u:pw@h/vh")];
    const { services, env } = await servicesForStart({ boundServices: async () => list }, "app");
    expect(services.map((s) => s.label)).toEqual(["postgresql", "redis", "rabbitmq"]);
    expect(services[0]).toEqual({ name: "postgresql-1", label: "postgresql", plan: "shared", tags: ["postgresql"], instance_guid: "i-postgresql", binding_guid: "b-postgresql", credentials: { uri: "postgres://u:pw@h:5432/db", password: "pw" } });
    // the agent's side of the contract (agent/instance-env.ts)
    expect(databaseUrl(services)).toBe("postgres://u:pw@h:5432/db");
    expect(Object.keys(vcapServices(services)).sort()).toEqual(["postgresql", "rabbitmq", "redis"]);
    expect(env).toEqual({ DATABASE_URL: "postgres://u:pw@h:5432/db", REDIS_URL: "redis://u:pw@h:6379", AMQP_URL: "amqp://u:pw@h/vh" });
  });
  test("no bindings: nothing", async () => {
    expect(await servicesForStart({ boundServices: async () => [] }, "app")).toEqual({ services: [], env: {} });
  });
});
