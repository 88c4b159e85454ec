import { describe, expect, test } from "bun:test";
import type { ServiceBinding } from "./messages.ts";
import { serviceEnvironment, serviceUrlVariables, vcapServices } from "./service-env.ts";

const pg = (name: string, n: number): ServiceBinding => ({
  name,
  label: "postgresql",
  plan: "shared",
  tags: ["postgresql", "sql"],
  instance_guid: `i-${n}`,
  binding_guid: `b-${n}`,
  credentials: { uri: `postgres://u${n}:p@127.0.0.1:5432/db${n}`, hostname: "127.0.0.1", port: 5432, name: `db${n}`, username: `u${n}`, password: "p" },
});
const redis: ServiceBinding = {
  name: "cache",
  label: "redis",
  plan: "shared",
  tags: [],
  instance_guid: "i-r",
  binding_guid: "b-r",
  credentials: { uri: "redis://u:p@127.0.0.1:6379", hostname: "127.0.0.1", port: 6379, name: "i-r", username: "u", password: "p" },
};
const withUri = (uri: unknown, label = "x"): ServiceBinding => ({ ...redis, label, credentials: { uri } });

describe("vcapServices", () => {
  test("groups bindings by label in Cloud Foundry's shape, in the order given", () => {
    const v = vcapServices([pg("main", 1), redis, pg("reports", 2)]);
    expect(Object.keys(v)).toEqual(["postgresql", "redis"]);
    expect(v.postgresql!.map((e) => e.name)).toEqual(["main", "reports"]);
    expect(v.postgresql![0]).toEqual({
      name: "main",
      instance_name: "main",
      binding_name: null,
      label: "postgresql",
      plan: "shared",
      tags: ["postgresql", "sql"],
      instance_guid: "i-1",
      binding_guid: "b-1",
      credentials: pg("main", 1).credentials,
    });
    expect(v.redis![0]!.tags).toEqual([]);
  });

  test("no bindings: an empty object", () => {
    expect(vcapServices([])).toEqual({});
    expect(serviceEnvironment([])).toEqual({ VCAP_SERVICES: "{}" });
  });

  test("shares no object with the bindings", () => {
    const b = pg("main", 1);
    const entry = vcapServices([b]).postgresql![0]!;
    entry.tags.push("changed");
    entry.credentials.password = "changed";
    expect(b.tags).toEqual(["postgresql", "sql"]);
    expect(b.credentials.password).toBe("p");
  });
});

describe("serviceUrlVariables", () => {
  test("the first database feeds DATABASE_URL, the first redis REDIS_URL, whatever was bound before", () => {
    expect(serviceUrlVariables([redis, pg("main", 1), pg("reports", 2)])).toEqual({
      DATABASE_URL: "postgres://u1:p@127.0.0.1:5432/db1",
      REDIS_URL: "redis://u:p@127.0.0.1:6379",
    });
  });

  test("every database scheme feeds DATABASE_URL; redis and amqp their own; others nothing", () => {
    const cases: [string, string | undefined][] = [
      ["postgres://u@h/d", "DATABASE_URL"],
      ["postgresql://u@h/d", "DATABASE_URL"],
      ["mysql://u@h/d", "DATABASE_URL"],
      ["mysql2://u@h/d", "DATABASE_URL"],
      ["mariadb://u@h/d", "DATABASE_URL"],
      ["mongodb://u@h/d", "DATABASE_URL"],
      ["mongodb+srv://u@h/d", "DATABASE_URL"],
      ["POSTGRES://u@h/d", "DATABASE_URL"],
      ["redis://u@h", "REDIS_URL"],
      ["rediss://u@h", "REDIS_URL"],
      ["amqp://u@h/v", "AMQP_URL"],
      ["amqps://u@h/v", "AMQP_URL"],
      ["http://h", undefined],
      ["postgres:relative", undefined],
    ];
    for (const [uri, name] of cases) expect(Object.keys(serviceUrlVariables([withUri(uri)])), uri).toEqual(name ? [name] : []);
  });

  test("bindings without a string uri are skipped", () => {
    expect(serviceUrlVariables([withUri(undefined), withUri(42), withUri("mysql://a:b@h:3306/d")])).toEqual({ DATABASE_URL: "mysql://a:b@h:3306/d" });
  });
});

describe("serviceEnvironment", () => {
  test("VCAP_SERVICES as JSON beside the URL variables", () => {
    const env = serviceEnvironment([pg("main", 1), withUri("amqp://q", "rabbitmq")]);
    expect(Object.keys(env)).toEqual(["VCAP_SERVICES", "DATABASE_URL", "AMQP_URL"]);
    expect(JSON.parse(env.VCAP_SERVICES!)).toEqual(JSON.parse(JSON.stringify(vcapServices([pg("main", 1), withUri("amqp://q", "rabbitmq")]))));
    expect(env.DATABASE_URL).toBe("postgres://u1:p@127.0.0.1:5432/db1");
  });

  test("a URL variable set by hand wins; VCAP_SERVICES is always the platform's", () => {
    const env = serviceEnvironment([pg("main", 1), redis], { DATABASE_URL: "postgres://mine", VCAP_SERVICES: "{}" });
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.REDIS_URL).toBe("redis://u:p@127.0.0.1:6379");
    expect(Object.keys(JSON.parse(env.VCAP_SERVICES!))).toEqual(["postgresql", "redis"]);
  });
});
