import { describe, expect, test } from "bun:test";
import { serviceEnvironment, vcapServices } from "../../../bus/index.ts";
import type { BoundService } from "../../broker/index.ts";
import { servicesForStart } from "./service-gateway.ts";

const bound = (label: string, uri: string): BoundService => ({
  name: `${label}-1`, label, plan: "shared", tags: [label], instanceGuid: `i-${label}`, bindingGuid: `b-${label}`, credentials: { uri, password: "pw" },
});

describe("servicesForStart: what dea.<id>.start carries", () => {
  test("the bus's ServiceBinding shape, databases first, and the URL variables the agent would derive", async () => {
    const list = [bound("redis", "redis://u:pw@h:6379"), bound("postgresql", "postgres://u:pw@h:5432/db"), bound("rabbitmq", "amqp://u:pw@h/vh")];
    const { services, env } = await servicesForStart({ boundServices: async () => list }, "app");
    expect(services.map((s) => s.label)).toEqual(["postgresql", "redis", "rabbitmq"]);
    expect(services[0]).toEqual({ name: "postgresql-1", label: "postgresql", plan: "shared", tags: ["postgresql"], instance_guid: "i-postgresql", binding_guid: "b-postgresql", credentials: { uri: "postgres://u:pw@h:5432/db", password: "pw" } });
    // what the agent makes of them (bus/service-env.ts) is what env carries for older agents
    expect(Object.keys(vcapServices(services))).toEqual(["postgresql", "redis", "rabbitmq"]);
    expect(env).toEqual({ DATABASE_URL: "postgres://u:pw@h:5432/db", REDIS_URL: "redis://u:pw@h:6379", AMQP_URL: "amqp://u:pw@h/vh" });
    const { VCAP_SERVICES: _, ...urls } = serviceEnvironment(services);
    expect(urls).toEqual(env);
  });
  test("no bindings: nothing", async () => {
    expect(await servicesForStart({ boundServices: async () => [] }, "app")).toEqual({ services: [], env: {} });
  });
});
