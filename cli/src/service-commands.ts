// The services commands: brokers (admin), the marketplace, service instances and bindings. Creates and
// deletes are asynchronous on the controller (202 + last_operation); these commands wait and show progress
// unless --no-wait.

import { existsSync, readFileSync } from "node:fs";
import { ApiClient, CliError } from "./client.ts";
import type { CliConfig } from "./config.ts";
import { appByName, client, has, json, need, readLine, spaceOf, str, type Command } from "./commands.ts";
import type { Out } from "./output.ts";
import { table } from "./table.ts";

const DEFAULT_WAIT_SEC = 600;

/** Polls a service instance or binding until its last operation ends; resolves "gone" on 404 (deleted). */
export async function waitForOperation(api: ApiClient, path: string, out: Out, what: string, timeoutMs = DEFAULT_WAIT_SEC * 1000): Promise<any | "gone"> {
  const deadline = Date.now() + timeoutMs;
  const t0 = Date.now();
  for (let delay = 200; Date.now() < deadline; delay = Math.min(delay * 1.5, 2000)) {
    const res = await api.raw("GET", path);
    if (res.status === 404) {
      out.progressDone(`${what}: done.`);
      return "gone";
    }
    const r = await api.parse<any>(res);
    const op = r.last_operation;
    if (op.state === "succeeded") {
      out.progressDone(`${what}: done.`);
      return r;
    }
    if (op.state === "failed") {
      out.progressDone(`${what}: failed.`);
      throw new CliError(`${what} failed: ${op.description ?? "the broker gave no reason"}`);
    }
    if (out.tty) out.progress(`${what}: in progress (${Math.round((Date.now() - t0) / 1000)} s)${op.description ? ` — ${op.description}` : ""}`);
    await Bun.sleep(delay);
  }
  throw new CliError(`${what} is still in progress after ${Math.round(timeoutMs / 1000)} s; check later with skiff services`);
}

/** `-c '{"k":"v"}'` or `-c params.json` → an object. */
function parameters(value: string | undefined): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  let text = value;
  if (!value.trim().startsWith("{")) {
    if (!existsSync(value)) throw new CliError(`-c needs a JSON object or a JSON file; "${value}" is neither`, 2);
    text = readFileSync(value, "utf8");
  }
  try {
    const v = JSON.parse(text);
    if (v && typeof v === "object" && !Array.isArray(v)) return v;
  } catch {}
  throw new CliError(`-c: the parameters must be a JSON object, e.g. -c '{"size": "small"}'`, 2);
}

export async function instanceByName(api: ApiClient, cfg: CliConfig, name: string): Promise<any> {
  const space = spaceOf(cfg);
  const r = await api.get(`/v3/service_instances?names=${encodeURIComponent(name)}&space_guids=${space.guid}`);
  if (!r.resources[0]) throw new CliError(`Service instance ${name} not found in space ${space.name}. See: skiff services`);
  return r.resources[0];
}

async function brokerByName(api: ApiClient, name: string): Promise<any> {
  const b = (await api.get(`/v3/service_brokers?names=${encodeURIComponent(name)}`)).resources[0];
  if (!b) throw new CliError(`Service broker ${name} not found. See: skiff service-brokers`);
  return b;
}

/** Binds, waits for the broker, and says how to apply it. Shared by bind-service and push (manifest services:). */
export async function bindService(api: ApiClient, cfg: CliConfig, app: any, instanceName: string, out: Out, params?: Record<string, unknown>): Promise<boolean> {
  const instance = await instanceByName(api, cfg, instanceName);
  const existing = await api.get(`/v3/service_credential_bindings?app_guids=${app.guid}&service_instance_guids=${instance.guid}`);
  if (existing.resources.some((b: any) => b.last_operation.state !== "failed")) {
    out.say(`${app.name} is already bound to ${instanceName}.`);
    return false;
  }
  // a failed earlier attempt is cleared first, so the new one can take its place
  for (const b of existing.resources) {
    await api.del(`/v3/service_credential_bindings/${b.guid}`);
    await waitForOperation(api, `/v3/service_credential_bindings/${b.guid}`, out, `Removing the failed binding of ${instanceName}`);
  }
  const b = await api.post("/v3/service_credential_bindings", {
    type: "app", relationships: { app: { data: { guid: app.guid } }, service_instance: { data: { guid: instance.guid } } }, ...(params ? { parameters: params } : {}),
  });
  await waitForOperation(api, `/v3/service_credential_bindings/${b.guid}`, out, `Binding ${instanceName} to ${app.name}`);
  return true;
}

const credentials = (a: { positional: string[] }, usage: string) => ({
  name: need(a as any, 0, "the broker name", usage), username: need(a as any, 1, "the username", usage),
  password: need(a as any, 2, "the password", usage), url: need(a as any, 3, "the URL", usage),
});

export const serviceCommands: Record<string, Command> = {
  "create-service-broker": {
    usage: "create-service-broker NAME USER PASSWORD URL",
    summary: "Register a service broker and its catalog (admin)",
    async run(a, out) {
      const c = credentials(a, this.usage);
      const b = await client().api.post("/v3/service_brokers", { name: c.name, url: c.url, authentication: { type: "basic", credentials: { username: c.username, password: c.password } } });
      const offerings = (await client().api.all(`/v3/service_offerings?service_broker_guids=${b.guid}`)).map((o: any) => o.name);
      out.say(`Created service broker ${b.name} offering ${offerings.join(", ") || "no services"}. See: skiff marketplace`);
    },
  },
  "update-service-broker": {
    usage: "update-service-broker NAME USER PASSWORD URL",
    summary: "Change a broker's credentials or URL and re-read its catalog (admin)",
    async run(a, out) {
      const c = credentials(a, this.usage);
      const api = client().api;
      const b = await brokerByName(api, c.name);
      await api.patch(`/v3/service_brokers/${b.guid}`, { url: c.url, authentication: { type: "basic", credentials: { username: c.username, password: c.password } } });
      out.say(`Updated service broker ${c.name}.`);
    },
  },
  "delete-service-broker": {
    usage: "delete-service-broker NAME [-f]",
    summary: "Remove a service broker that has no instances (admin)",
    async run(a, out) {
      const name = need(a, 0, "the broker name", this.usage);
      if (!has(a, "f") && process.stdin.isTTY && !/^y(es)?$/i.test(await readLine(`Really delete the service broker ${name}? [yN]: `))) return out.say("Delete cancelled.");
      const api = client().api;
      await api.del(`/v3/service_brokers/${(await brokerByName(api, name)).guid}`);
      out.say(`Deleted service broker ${name}.`);
    },
  },
  "service-brokers": {
    usage: "service-brokers [--json]",
    summary: "List service brokers (admin)",
    async run(a, out) {
      const brokers = await client().api.all("/v3/service_brokers");
      if (has(a, "json")) return json(out, brokers);
      out.say(brokers.length ? table(["name", "url"], brokers.map((b: any) => [b.name, b.url])) : "No service brokers found.");
    },
  },
  marketplace: {
    usage: "marketplace [-e OFFERING] [--json]",
    summary: "List the services and plans you can create",
    async run(a, out) {
      const api = client().api;
      const only = str(a, "e");
      const offerings = (await api.all("/v3/service_offerings")).filter((o: any) => !only || o.name === only);
      const plans = offerings.length ? await api.all(`/v3/service_plans?service_offering_guids=${offerings.map((o: any) => o.guid).join(",")}`) : [];
      if (has(a, "json")) return json(out, offerings.map((o: any) => ({ ...o, plans: plans.filter((p: any) => p.relationships.service_offering.data.guid === o.guid) })));
      if (!offerings.length) return out.say(only ? `No service offering named ${only}.` : "No services in the marketplace: an admin registers a broker with skiff create-service-broker.");
      if (only) {
        out.say(`Getting service plan information for service offering ${only}...\n`);
        return out.say(table(["plan", "description", "free or paid"], plans.map((p: any) => [p.name, p.description, p.free ? "free" : "paid"])));
      }
      out.say(table(["offering", "plans", "description", "broker"], offerings.map((o: any) => [
        o.name, plans.filter((p: any) => p.relationships.service_offering.data.guid === o.guid).map((p: any) => p.name).join(", "),
        o.description, o.relationships.service_broker.data.name,
      ])));
      out.say("\nTIP: Use 'skiff marketplace -e OFFERING' to see the plans of an offering and what each one allows.");
    },
  },
  "create-service": {
    usage: "create-service OFFERING PLAN NAME [-c JSON|FILE] [-b BROKER] [--no-wait]",
    summary: "Create a service instance (waits for the broker, showing progress)",
    async run(a, out) {
      const { cfg, api } = client();
      const [offeringName, planName, name] = [need(a, 0, "the offering", this.usage), need(a, 1, "the plan", this.usage), need(a, 2, "the instance name", this.usage)];
      const params = parameters(str(a, "c"));
      const broker = str(a, "b");
      const offerings = await api.all(`/v3/service_offerings?names=${encodeURIComponent(offeringName)}${broker ? `&service_broker_names=${encodeURIComponent(broker)}` : ""}`);
      if (!offerings.length) throw new CliError(`Service offering ${offeringName} not found. See: skiff marketplace`);
      if (offerings.length > 1) throw new CliError(`Several brokers offer ${offeringName} (${offerings.map((o: any) => o.relationships.service_broker.data.name).join(", ")}); pick one with -b BROKER`, 2);
      const plan = (await api.all(`/v3/service_plans?service_offering_guids=${offerings[0].guid}&names=${encodeURIComponent(planName)}`))[0];
      if (!plan) throw new CliError(`Plan ${planName} not found for ${offeringName}. See: skiff marketplace -e ${offeringName}`);
      out.say(`Creating service instance ${name} (${offeringName} ${planName}) in org ${cfg.org?.name ?? "?"} / space ${spaceOf(cfg).name} as ${cfg.username ?? "?"}...`);
      const inst = await api.post("/v3/service_instances", {
        type: "managed", name, relationships: { space: { data: { guid: spaceOf(cfg).guid } }, service_plan: { data: { guid: plan.guid } } }, ...(params ? { parameters: params } : {}),
      });
      if (has(a, "no-wait")) return out.say(`Create in progress. Check it with: skiff service ${name}`);
      await waitForOperation(api, `/v3/service_instances/${inst.guid}`, out, `Creating ${name}`);
      out.say(`Service instance ${name} created. Bind it with: skiff bind-service APP ${name}`);
    },
  },
  "update-service": {
    usage: "update-service NAME [-p PLAN] [-c JSON|FILE] [--no-wait]",
    summary: "Move a service instance to another plan of its offering, or give it new parameters (its data stays)",
    async run(a, out) {
      const { cfg, api } = client();
      const name = need(a, 0, "the service instance name", this.usage);
      const planName = str(a, "p");
      const params = parameters(str(a, "c"));
      if (planName === undefined && params === undefined) throw new CliError(`Nothing to change: give a plan (-p PLAN) or parameters (-c JSON). Usage: skiff ${this.usage}`, 2);
      const instance = await instanceByName(api, cfg, name);
      const offering = instance.service_offering.name;
      let plan: any;
      if (planName !== undefined) {
        plan = (await api.all(`/v3/service_plans?service_offering_guids=${instance.service_offering.guid}&names=${encodeURIComponent(planName)}`))[0];
        if (!plan) throw new CliError(`Plan ${planName} not found for ${offering}. See: skiff marketplace -e ${offering}`);
        if (plan.guid === instance.service_plan.guid && params === undefined) return out.say(`Service instance ${name} is already on plan ${planName}.`);
      }
      out.say(`Updating service instance ${name} (${offering}${plan ? ` ${instance.service_plan.name} → ${plan.name}` : ""}) as ${cfg.username ?? "?"}...`);
      const updated = await api.patch(`/v3/service_instances/${instance.guid}`, {
        ...(plan ? { relationships: { service_plan: { data: { guid: plan.guid } } } } : {}), ...(params ? { parameters: params } : {}),
      });
      if (updated.last_operation.type !== "update" || updated.last_operation.state !== "in progress") return out.say(`Nothing to change for ${name}.`);
      if (has(a, "no-wait")) return out.say(`Update in progress. Check it with: skiff service ${name}`);
      await waitForOperation(api, `/v3/service_instances/${instance.guid}`, out, `Updating ${name}`);
      out.say(`Service instance ${name} updated${plan ? `: plan ${plan.name}` : ""}. Bound apps keep their credentials; no restart needed.`);
    },
  },
  services: {
    usage: "services [--json]",
    summary: "List service instances in the targeted space",
    async run(a, out) {
      const { cfg, api } = client();
      const space = spaceOf(cfg);
      const instances = await api.all(`/v3/service_instances?space_guids=${space.guid}`);
      const bindings = await api.all(`/v3/service_credential_bindings`);
      const apps = new Map((await api.all(`/v3/apps?space_guids=${space.guid}`)).map((x: any) => [x.guid, x.name]));
      const boundTo = (i: any) => bindings.filter((b: any) => b.relationships.service_instance.data.guid === i.guid).map((b: any) => apps.get(b.relationships.app.data.guid) ?? b.relationships.app.data.guid);
      if (has(a, "json")) return json(out, instances.map((i: any) => ({ ...i, bound_apps: boundTo(i) })));
      out.say(`Getting service instances in org ${cfg.org?.name} / space ${space.name} as ${cfg.username}...\n`);
      out.say(instances.length ? table(["name", "offering", "plan", "bound apps", "last operation"], instances.map((i: any) => [
        i.name, i.service_offering.name, i.service_plan.name, boundTo(i).join(", "), `${i.last_operation.type} ${i.last_operation.state}`,
      ])) : "No service instances found.");
    },
  },
  service: {
    usage: "service NAME [--json]",
    summary: "Show a service instance, its last operation and bound apps",
    async run(a, out) {
      const { cfg, api } = client();
      const i = await instanceByName(api, cfg, need(a, 0, "the instance name", this.usage));
      const bindings = await api.all(`/v3/service_credential_bindings?service_instance_guids=${i.guid}`);
      if (has(a, "json")) return json(out, { ...i, bindings });
      const apps = new Map((await api.all(`/v3/apps?space_guids=${spaceOf(cfg).guid}`)).map((x: any) => [x.guid, x.name]));
      const op = i.last_operation;
      out.say(`name:            ${i.name}\nguid:            ${i.guid}\noffering:        ${i.service_offering.name}\nplan:            ${i.service_plan.name}\ndashboard:       ${i.dashboard_url ?? ""}\nlast operation:  ${op.type} ${op.state}${op.description ? ` (${op.description})` : ""}, ${op.updated_at}\n`);
      out.say(bindings.length ? table(["bound app", "binding", "last operation"], bindings.map((b: any) => [apps.get(b.relationships.app.data.guid) ?? b.relationships.app.data.guid, b.guid, `${b.last_operation.type} ${b.last_operation.state}`])) : "No bound apps.");
    },
  },
  "bind-service": {
    usage: "bind-service APP INSTANCE [-c JSON|FILE]",
    summary: "Bind a service instance to an app (then: skiff restart APP)",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const name = need(a, 1, "the service instance name", this.usage);
      if (await bindService(api, cfg, app, name, out, parameters(str(a, "c"))))
        out.say(`Bound ${name} to ${app.name}. Run skiff restart ${app.name} to give its instances the credentials (VCAP_SERVICES; no restage needed).`);
    },
  },
  "unbind-service": {
    usage: "unbind-service APP INSTANCE",
    summary: "Unbind a service instance from an app (its credentials stop working)",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const name = need(a, 1, "the service instance name", this.usage);
      const instance = await instanceByName(api, cfg, name);
      const b = (await api.get(`/v3/service_credential_bindings?app_guids=${app.guid}&service_instance_guids=${instance.guid}`)).resources[0];
      if (!b) return out.say(`${app.name} is not bound to ${name}.`);
      await api.del(`/v3/service_credential_bindings/${b.guid}`);
      await waitForOperation(api, `/v3/service_credential_bindings/${b.guid}`, out, `Unbinding ${name} from ${app.name}`);
      out.say(`Unbound ${name} from ${app.name}. Run skiff restart ${app.name} to drop it from the app's environment.`);
    },
  },
  "delete-service": {
    usage: "delete-service INSTANCE [-f] [--no-wait]",
    summary: "Delete a service instance (unbind it first); the broker removes its data",
    async run(a, out) {
      const { cfg, api } = client();
      const name = need(a, 0, "the service instance name", this.usage);
      if (!has(a, "f") && process.stdin.isTTY && !/^y(es)?$/i.test(await readLine(`Really delete the service instance ${name} and its data? [yN]: `))) return out.say("Delete cancelled.");
      const instance = await instanceByName(api, cfg, name);
      await api.del(`/v3/service_instances/${instance.guid}`);
      if (has(a, "no-wait")) return out.say(`Delete in progress. Check it with: skiff services`);
      await waitForOperation(api, `/v3/service_instances/${instance.guid}`, out, `Deleting ${name}`);
      out.say(`Deleted service instance ${name}.`);
    },
  },
};
