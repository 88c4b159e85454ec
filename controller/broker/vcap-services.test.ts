import { describe, expect, test } from "bun:test";
import { databaseUrl, vcapServices as agentVcapServices } from "../../agent/instance-env.ts";
import { serviceEnvironment, serviceUrlVariables, vcapServices, type BoundService } from "./vcap-services.ts";

const pg = (name: string, n: number): BoundService => ({
  name,
  label: "postgresql",
  plan: "shared",
  tags: ["postgresql", "sql"],
  instanceGuid: `i-${n}`,
  bindingGuid: `b-${n}`,
  credentials: { uri: `postgres://u${n}:p@127.0.0.1:5432/db${n}`, hostname: "127.0.0.1", port: 5432, name: `db${n}`, username: `u${n}`, password: "p" },
});
const redis: BoundService = {
  name: "cache",
  label: "redis",
  plan: "shared",
  instanceGuid: "i-r",
  bindingGuid: "b-r",
  credentials: { uri: "redis://u:p@127.0.0.1:6379", hostname: "127.0.0.1", port: 6379, name: "i-r", username: "u", password: "p" },
};

describe("vcapServices", () => {
  test("groups bindings by label in Cloud Foundry's shape", () => {
    const v = vcapServices([pg("main", 1), redis, pg("reports", 2)]);
    expect(Object.keys(v)).toEqual(["postgresql", "redis"]);
    expect(v.postgresql!.map((e) => e.name)).toEqual(["main", "reports"]);
    expect(v.postgresql![0]).toEqual({
      name: "main",
      label: "postgresql",
      plan: "shared",
      tags: ["postgresql", "sql"],
      instance_guid: "i-1",
      binding_guid: "b-1",
      instance_name: "main",
      binding_name: null,
      credentials: pg("main", 1).credentials,
    });
    expect(v.redis![0]!.tags).toEqual([]);
  });

  test("no bindings: an empty object", () => {
    expect(vcapServices([])).toEqual({});
    expect(serviceEnvironment([])).toEqual({ VCAP_SERVICES: "{}" });
  });
});

describe("serviceUrlVariables", () => {
  test("the first database feeds DATABASE_URL, the first redis REDIS_URL", () => {
    expect(serviceUrlVariables([redis, pg("main", 1), pg("reports", 2)])).toEqual({
      DATABASE_URL: "postgres://u1:p@127.0.0.1:5432/db1",
      REDIS_URL: "redis://u:p@127.0.0.1:6379",
    });
  });

  test("mysql and amqp schemes; unknown schemes and missing uris are skipped", () => {
    const mk = (uri: unknown): BoundService => ({ ...redis, credentials: { uri } as Record<string, unknown> });
    expect(serviceUrlVariables([mk("mysql://a:b@h:3306/d"), mk("amqp://a:b@h:5672/v"), mk("https://x"), mk(undefined)])).toEqual({
      DATABASE_URL: "mysql://a:b@h:3306/d",
      AMQP_URL: "amqp://a:b@h:5672/v",
    });
  });

  test("serviceEnvironment carries VCAP_SERVICES as JSON beside the URLs", () => {
    const env = serviceEnvironment([pg("main", 1)]);
    expect(JSON.parse(env.VCAP_SERVICES!).postgresql[0].binding_guid).toBe("b-1");
    expect(env.DATABASE_URL).toBe("postgres://u1:p@127.0.0.1:5432/db1");
  });
});

describe("agreement with the agent, which builds what apps actually get (issue 8)", () => {
  const bound = (label: string, uri: string, n: number): BoundService => ({
    name: `${label}-${n}`, label, plan: "shared", tags: [label], instanceGuid: `i-${n}`, bindingGuid: `b-${n}`, credentials: { uri, password: "p" },
  });
  const asBus = (b: BoundService) => ({
    name: b.name, label: b.label, plan: b.plan, tags: b.tags ?? [], instance_guid: b.instanceGuid, binding_guid: b.bindingGuid, credentials: b.credentials as Record<string, unknown>,
  });
  const uris = ["postgres://u@h/d", "postgresql://u@h/d", "mysql://u@h/d", "mysql2://u@h/d", "mariadb://u@h/d", "mongodb://u@h/d", "mongodb+srv://u@h/d", "redis://u@h", "amqp://u@h/v", "http://h"];

  test("DATABASE_URL comes from the same schemes", () => {
    for (const uri of uris) {
      const list = [bound("x", uri, 1)];
      expect(serviceUrlVariables(list).DATABASE_URL, uri).toBe(databaseUrl(list.map(asBus)));
    }
  });

  test("VCAP_SERVICES has the same entries", () => {
    const list = uris.slice(0, 4).map((u, i) => bound(i % 2 ? "mysql" : "postgresql", u, i));
    expect(JSON.parse(JSON.stringify(vcapServices(list)))).toEqual(JSON.parse(JSON.stringify(agentVcapServices(list.map(asBus)))));
  });
});
