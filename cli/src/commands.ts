// Every `skiff` command but push: a table from name to handler, with its usage line.

import { ApiClient, CliError } from "./client.ts";
import { loadConfig, saveConfig, type CliConfig } from "./config.ts";
import { parseMegabytes } from "./manifest.ts";
import { formatLine, type Out } from "./output.ts";
import { push, pushTarget, streamLogs } from "./push.ts";
import { bytes, mb, table } from "./table.ts";

export interface Args {
  positional: string[];
  flags: Record<string, string | boolean>;
}

export interface Command {
  usage: string;
  summary: string;
  run(args: Args, out: Out): Promise<void>;
}

export const str = (a: Args, ...names: string[]): string | undefined => {
  for (const n of names) if (typeof a.flags[n] === "string") return a.flags[n] as string;
  return undefined;
};
export const has = (a: Args, ...names: string[]) => names.some((n) => a.flags[n] !== undefined && a.flags[n] !== false);
export const need = (a: Args, i: number, what: string, usage: string): string => {
  const v = a.positional[i];
  if (!v) throw new CliError(`missing ${what}. Usage: skiff ${usage}`, 2);
  return v;
};
const intFlag = (a: Args, name: string): number | undefined => {
  const v = str(a, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new CliError(`-${name} needs a whole number, got "${v}"`, 2);
  return Number(v);
};
const sizeFlag = (a: Args, name: string): number | undefined => {
  const v = str(a, name);
  if (v === undefined) return undefined;
  try {
    return parseMegabytes(v, `-${name}`);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
};

function since(ts: unknown): string {
  if (typeof ts !== "number" && typeof ts !== "string") return "";
  let n = typeof ts === "string" ? Date.parse(ts) : ts;
  if (n < 1e12) n *= 1000; // agents may report seconds
  return new Date(n).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function client(): { cfg: CliConfig; api: ApiClient } {
  const cfg = loadConfig();
  return { cfg, api: ApiClient.from(cfg) };
}

export function spaceOf(cfg: CliConfig) {
  if (!cfg.space) throw new CliError("No space targeted. Run: skiff target -o ORG -s SPACE");
  return cfg.space;
}

export async function appByName(api: ApiClient, cfg: CliConfig, name: string): Promise<any> {
  const space = spaceOf(cfg);
  const r = await api.get(`/v3/apps?names=${encodeURIComponent(name)}&space_guids=${space.guid}&include=routes`);
  const app = r.resources[0];
  if (!app) throw new CliError(`App ${name} not found in space ${space.name}. See: skiff apps`);
  return app;
}

async function readPassword(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) throw new CliError("no password given: pass -p PASSWORD (no TTY to prompt on)", 2);
  process.stdout.write(prompt);
  // raw mode: do not echo the password
  process.stdin.setRawMode?.(true);
  let pw = "";
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    const s = chunk.toString();
    if (s === "\u0003") process.exit(130);
    if (s.includes("\r") || s.includes("\n")) {
      pw += s.split(/[\r\n]/)[0];
      break;
    }
    pw += s;
  }
  process.stdin.setRawMode?.(false);
  process.stdout.write("\n");
  return pw;
}

export async function readLine(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) throw new CliError("missing a value and no TTY to prompt on", 2);
  process.stdout.write(prompt);
  for await (const line of console) return line.trim();
  return "";
}

/** Targets the org/space by name, or the first visible ones. */
async function chooseTarget(api: ApiClient, cfg: CliConfig, orgName?: string, spaceName?: string): Promise<void> {
  const orgs = await api.all("/v3/organizations");
  const org = orgName ? orgs.find((o: any) => o.name === orgName) : (cfg.org && orgs.find((o: any) => o.guid === cfg.org!.guid)) ?? orgs[0];
  if (!org) throw new CliError(orgName ? `Organization ${orgName} not found. See: skiff orgs` : "You can see no organization; ask an admin for a role.");
  cfg.org = { guid: org.guid, name: org.name };
  const spaces = await api.all(`/v3/spaces?organization_guids=${org.guid}`);
  const space = spaceName ? spaces.find((s: any) => s.name === spaceName) : (orgName === undefined && cfg.space && spaces.find((s: any) => s.guid === cfg.space!.guid)) || spaces[0];
  if (!space && spaceName) throw new CliError(`Space ${spaceName} not found in ${org.name}. See: skiff spaces`);
  cfg.space = space ? { guid: space.guid, name: space.name } : undefined;
}

export const json = (out: Out, v: unknown) => out.say(JSON.stringify(v, null, 2));

/** Polls a task until it has ended (SUCCEEDED or FAILED). */
async function waitTask(api: ApiClient, guid: string, timeoutMs = 3_600_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 200; Date.now() < deadline; delay = Math.min(delay * 2, 2000)) {
    const t = await api.get(`/v3/tasks/${guid}`);
    if (t.state === "SUCCEEDED" || t.state === "FAILED") return t;
    await Bun.sleep(delay);
  }
  throw new CliError("Timed out waiting for the task to end. Check: skiff tasks APP");
}

export const commands: Record<string, Command> = {
  login: {
    usage: "login -a URL -u USER -p PASSWORD [-o ORG] [-s SPACE]",
    summary: "Log in to a skiff API and target an org and space",
    async run(a, out) {
      const cfg = loadConfig();
      const apiUrl = (str(a, "a", "api") ?? cfg.api ?? process.env.SKIFF_CONTROLLER_URL ?? (await readLine("API endpoint: "))).replace(/\/+$/, "");
      const user = str(a, "u", "username") ?? (await readLine("Username: "));
      const password = str(a, "p", "password") ?? process.env.SKIFF_PASSWORD ?? (await readPassword("Password: "));
      const anon = new ApiClient(apiUrl);
      await anon.get("/v3/info");
      const tok = await anon.post("/v3/tokens", { username: user, password });
      const next: CliConfig = { api: apiUrl, token: tok.access_token, username: user };
      await chooseTarget(new ApiClient(apiUrl, tok.access_token), next, str(a, "o"), str(a, "s"));
      saveConfig(next);
      out.say(`Logged in to ${apiUrl} as ${user}.`);
      out.say(`Targeted org ${next.org?.name ?? "(none)"}, space ${next.space?.name ?? "(none)"}.`);
    },
  },
  logout: {
    usage: "logout",
    summary: "Forget the saved token",
    async run(_a, out) {
      const cfg = loadConfig();
      if (cfg.api && cfg.token) await new ApiClient(cfg.api, cfg.token).raw("DELETE", "/v3/tokens/current").catch(() => undefined);
      saveConfig({ api: cfg.api });
      out.say("Logged out.");
    },
  },
  target: {
    usage: "target [-o ORG] [-s SPACE]",
    summary: "Show or change the targeted org and space",
    async run(a, out) {
      const { cfg, api } = client();
      if (str(a, "o") || str(a, "s")) {
        await chooseTarget(api, cfg, str(a, "o") ?? cfg.org?.name, str(a, "s"));
        saveConfig(cfg);
      }
      out.say(`API endpoint: ${cfg.api}\nuser:         ${cfg.username}\norg:          ${cfg.org?.name ?? "(none)"}\nspace:        ${cfg.space?.name ?? "(none)"}`);
    },
  },
  orgs: {
    usage: "orgs [--json]",
    summary: "List organizations",
    async run(a, out) {
      const orgs = await client().api.all("/v3/organizations");
      if (has(a, "json")) return json(out, orgs);
      out.say(table(["name"], orgs.map((o: any) => [o.name])));
    },
  },
  spaces: {
    usage: "spaces [--json]",
    summary: "List spaces in the targeted org",
    async run(a, out) {
      const { cfg, api } = client();
      const spaces = await api.all(`/v3/spaces${cfg.org ? `?organization_guids=${cfg.org.guid}` : ""}`);
      if (has(a, "json")) return json(out, spaces);
      out.say(table(["name"], spaces.map((s: any) => [s.name])));
    },
  },
  "create-org": {
    usage: "create-org NAME",
    summary: "Create an organization (admin)",
    async run(a, out) {
      const org = await client().api.post("/v3/organizations", { name: need(a, 0, "the org name", this.usage) });
      out.say(`Created org ${org.name}.`);
    },
  },
  "create-space": {
    usage: "create-space NAME [-o ORG]",
    summary: "Create a space in the targeted (or given) org",
    async run(a, out) {
      const { cfg, api } = client();
      const org = str(a, "o") ?? cfg.org?.guid;
      if (!org) throw new CliError("No org targeted: pass -o ORG or run skiff target -o ORG");
      const s = await api.post("/v3/spaces", { name: need(a, 0, "the space name", this.usage), organization_guid: org });
      out.say(`Created space ${s.name}. Target it with: skiff target -s ${s.name}`);
    },
  },
  apps: {
    usage: "apps [--json]",
    summary: "List apps in the targeted space",
    async run(a, out) {
      const { cfg, api } = client();
      const space = spaceOf(cfg);
      const apps = await api.all(`/v3/apps?space_guids=${space.guid}&include=routes`);
      if (has(a, "json")) return json(out, apps);
      out.say(`Getting apps in org ${cfg.org?.name} / space ${space.name} as ${cfg.username}...\n`);
      const rows = await Promise.all(apps.map(async (app: any) => {
        let running = 0;
        if (app.state === "STARTED") {
          const inst = await api.get(`/v3/apps/${app.guid}/instances`).catch(() => ({ resources: [] }));
          running = inst.resources.filter((r: any) => r.state === "RUNNING" && String(r.version ?? "").endsWith(`-${app.release}`)).length;
        }
        return [app.name, app.state.toLowerCase(), `${running}/${app.instances}`, mb(app.memory_in_mb), mb(app.disk_in_mb), (app.routes ?? []).join(", ")];
      }));
      out.say(apps.length ? table(["name", "requested state", "instances", "memory", "disk", "urls"], rows) : "No apps found.");
    },
  },
  app: {
    usage: "app NAME [--json]",
    summary: "Show an app and its instances, per process type",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const [inst, procs] = await Promise.all([api.get(`/v3/apps/${app.guid}/instances`), api.get(`/v3/apps/${app.guid}/processes`).catch(() => ({ resources: [] }))]);
      if (has(a, "json")) return json(out, { ...app, instances_detail: inst.resources, processes: procs.resources });
      const processes: any[] = procs.resources.length ? procs.resources : [{ type: "web", instances: app.instances, memory_in_mb: app.memory_in_mb, disk_in_mb: app.disk_in_mb }];
      const typeOf = (r: any) => r.process_type ?? "web";
      const webRunning = inst.resources.filter((r: any) => typeOf(r) === "web" && r.state === "RUNNING").length;
      out.say(`name:              ${app.name}\nrequested state:   ${app.state.toLowerCase()}\ninstances:         ${webRunning}/${app.instances}\nusage:             ${mb(app.memory_in_mb)} x ${app.instances} instances\nroutes:            ${(app.routes ?? []).join(", ")}\npackage:           ${app.package_state.toLowerCase()}${app.staging_error ? ` (${app.staging_error})` : ""}\nbuildpack:         ${app.buildpack ?? ""}\n`);
      processes.forEach((p, n) => {
        const rows = inst.resources.filter((r: any) => typeOf(r) === p.type);
        const running = rows.filter((r: any) => r.state === "RUNNING").length;
        // as cf v7: a section per process type (the web one keeps the plain table it always had)
        if (processes.length > 1) out.say(`${n ? "\n" : ""}type:              ${p.type}\ninstances:         ${running}/${p.instances}\nmemory usage:      ${mb(p.memory_in_mb)}${p.command ? `\ncommand:           ${p.command}` : ""}`);
        if (!rows.length) return out.say("There are no running instances of this process.");
        out.say(table(["", "state", "since", "cpu", "memory", "disk", "details"], rows.map((r: any) => [
          `#${r.index}`, String(r.state).toLowerCase(), since(r.since),
          r.usage ? `${Number(r.usage.cpu ?? 0).toFixed(1)}%` : "",
          r.usage ? `${bytes(r.usage.mem)} of ${mb(p.memory_in_mb)}` : "",
          r.usage ? `${bytes(r.usage.disk)} of ${mb(p.disk_in_mb)}` : "",
          r.details ?? (r.crash_count ? `${r.crash_count} crashes` : ""),
        ])));
      });
    },
  },
  push: {
    usage: "push NAME [-p PATH] [-f manifest.yml] [-i N] [-m 256M] [-k 1G] [-c CMD] [-b BUILDPACK] [--random-route] [--no-route] [--no-start] [--no-wait] [-t SECONDS]   (or: push PATH/ [--name NAME])",
    summary: "Upload an app, stage it and run it",
    async run(a, out) {
      const target = pushTarget(a.positional, { name: str(a, "name", "n"), path: str(a, "p", "path") });
      if (target.hint) out.warn(target.hint);
      await push(loadConfig(), {
        dir: target.dir, manifest: str(a, "f"), name: target.name,
        instances: intFlag(a, "i"), memory: sizeFlag(a, "m"), disk: sizeFlag(a, "k"), command: str(a, "c"), buildpack: str(a, "b"),
        randomRoute: has(a, "random-route"), noRoute: has(a, "no-route"), noStart: has(a, "no-start"), noWait: has(a, "no-wait"),
        timeoutSec: intFlag(a, "t"),
      }, out);
    },
  },
  scale: {
    usage: "scale NAME [--process TYPE] [-i INSTANCES] [-m MEMORY] [-k DISK]",
    summary: "Change a process type's instances (at once), memory or disk (takes effect on a rolling restart); web unless --process",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const type = str(a, "process") ?? "web";
      const body: Record<string, number> = {};
      const i = intFlag(a, "i"), m = sizeFlag(a, "m"), k = sizeFlag(a, "k");
      if (i !== undefined) body.instances = i;
      if (m !== undefined) body.memory_in_mb = m;
      if (k !== undefined) body.disk_in_mb = k;
      if (!Object.keys(body).length) {
        const procs = await api.get(`/v3/apps/${app.guid}/processes`).catch(() => undefined);
        const p = procs?.resources.find((x: any) => x.type === type) ?? (type === "web" ? app : undefined);
        if (!p) throw new CliError(`App ${app.name} has no process type ${type}. Its types: ${(procs?.resources ?? []).map((x: any) => x.type).join(", ")}`);
        out.say(`${procs && procs.resources.length > 1 ? `type:      ${type}\n` : ""}instances: ${p.instances}\nmemory:    ${mb(p.memory_in_mb)}\ndisk:      ${mb(p.disk_in_mb)}`);
        return;
      }
      if (type === "web") await api.patch(`/v3/apps/${app.guid}`, body);
      else await api.post(`/v3/apps/${app.guid}/processes/${encodeURIComponent(type)}/actions/scale`, body);
      const what = type === "web" ? app.name : `${app.name}'s ${type} process`;
      if (m !== undefined || k !== undefined) {
        await api.post(`/v3/apps/${app.guid}/actions/restart`);
        out.say(`Scaled ${what}; restarting (rolling) to apply the new limits.`);
      } else out.say(`Scaled ${what} to ${i} instance(s).`);
    },
  },
  "run-task": {
    usage: "run-task NAME --command CMD [--name TASK] [-m 256M] [-k 1G] [--wait]",
    summary: "Run a one-off task (a migration, a job) from the app's current droplet, with its env and services",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const command = str(a, "command", "c") ?? a.positional.slice(1).join(" ");
      if (!command) throw new CliError(`missing the command. Usage: skiff ${this.usage}`, 2);
      const m = sizeFlag(a, "m"), k = sizeFlag(a, "k");
      const t = await api.post(`/v3/apps/${app.guid}/tasks`, { command, ...(str(a, "name") ? { name: str(a, "name") } : {}), ...(m ? { memory_in_mb: m } : {}), ...(k ? { disk_in_mb: k } : {}) });
      out.say(`Task ${t.sequence_id} (${t.name}) has been submitted: ${t.state.toLowerCase()}.`);
      if (!has(a, "wait")) return out.say(`Follow it with: skiff tasks ${app.name}  (its output: skiff logs ${app.name} --recent)`);
      const ended = await waitTask(api, t.guid);
      out.say(`Task ${ended.sequence_id} (${ended.name}) ${ended.state.toLowerCase()}${ended.result?.failure_reason ? `: ${ended.result.failure_reason}` : ""}.`);
      if (ended.state !== "SUCCEEDED") throw new CliError(`Task ${ended.sequence_id} failed`, 1);
    },
  },
  tasks: {
    usage: "tasks NAME [--json]",
    summary: "List an app's tasks, newest first",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const list = (await api.all(`/v3/apps/${app.guid}/tasks`)).sort((x: any, y: any) => y.sequence_id - x.sequence_id);
      if (has(a, "json")) return json(out, list);
      out.say(list.length ? table(["id", "name", "state", "start time", "command", "details"], list.map((t: any) => [
        String(t.sequence_id), t.name, t.state.toLowerCase(), since(t.created_at), t.command,
        t.state === "FAILED" ? (t.result?.failure_reason ?? "") : t.state === "SUCCEEDED" ? "exit status 0" : "",
      ])) : `No tasks found for ${app.name}.`);
    },
  },
  "terminate-task": {
    usage: "terminate-task NAME TASK_ID",
    summary: "Stop a running task (by the id skiff tasks shows)",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const id = need(a, 1, "the task id", this.usage);
      if (!/^\d+$/.test(id)) throw new CliError(`the task id is the number skiff tasks ${app.name} shows, not "${id}"`, 2);
      const t = (await api.get(`/v3/apps/${app.guid}/tasks?sequence_ids=${id}`)).resources[0];
      if (!t) throw new CliError(`Task ${id} of ${app.name} not found. See: skiff tasks ${app.name}`);
      await api.post(`/v3/tasks/${t.guid}/actions/cancel`);
      out.say(`Terminating task ${id} (${t.name}) of ${app.name}.`);
    },
  },
  start: {
    usage: "start NAME", summary: "Start an app",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      await api.post(`/v3/apps/${app.guid}/actions/start`);
      out.say(`Starting ${app.name}. Watch it with: skiff app ${app.name}`);
    },
  },
  stop: {
    usage: "stop NAME", summary: "Stop an app",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      await api.post(`/v3/apps/${app.guid}/actions/stop`);
      out.say(`Stopped ${app.name}.`);
    },
  },
  restart: {
    usage: "restart NAME", summary: "Restart an app (rolling: one instance at a time)",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      await api.post(`/v3/apps/${app.guid}/actions/restart`);
      out.say(`Restarting ${app.name} (rolling).`);
    },
  },
  delete: {
    usage: "delete NAME [-f]", summary: "Delete an app",
    async run(a, out) {
      const { cfg, api } = client();
      const name = need(a, 0, "the app name", this.usage);
      if (!has(a, "f") && process.stdin.isTTY) {
        const ans = await readLine(`Really delete the app ${name}? [yN]: `);
        if (!/^y(es)?$/i.test(ans)) return out.say("Delete cancelled.");
      }
      const app = await appByName(api, cfg, name);
      await api.del(`/v3/apps/${app.guid}`);
      out.say(`Deleted app ${name}.`);
    },
  },
  logs: {
    usage: "logs NAME [--recent]", summary: "Show recent log lines, then stream new ones (Ctrl-C ends)",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const recent = await api.get(`/v3/apps/${app.guid}/logs/recent`);
      for (const l of recent.resources) out.say(formatLine(l));
      if (has(a, "recent")) return;
      const abort = new AbortController();
      process.on("SIGINT", () => abort.abort());
      await streamLogs(api, app.guid, abort.signal, (l) => out.say(l));
    },
  },
  env: {
    usage: "env NAME [--json]", summary: "Show an app's environment variables",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const r = await api.get(`/v3/apps/${app.guid}/env`);
      const env = r.environment_variables;
      if (has(a, "json")) return json(out, env);
      const vcap = r.system_env_json?.VCAP_SERVICES ?? {};
      if (Object.keys(vcap).length) out.say(`System-provided (from service bindings; applied at the next restart):\nVCAP_SERVICES: ${JSON.stringify(vcap, null, 2)}\n\nUser-provided:`);
      out.say(Object.keys(env).length ? Object.entries(env).map(([k, v]) => `${k}: ${v}`).join("\n") : "No user-provided environment variables.");
    },
  },
  "set-env": {
    usage: "set-env NAME VAR VALUE", summary: "Set an environment variable (restart to apply)",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const k = need(a, 1, "the variable name", this.usage);
      const v = a.positional[2];
      if (v === undefined) throw new CliError(`missing the value. Usage: skiff ${this.usage}`, 2);
      await api.patch(`/v3/apps/${app.guid}/env`, { var: { [k]: v } });
      out.say(`Set ${k} for ${app.name}. Run skiff restart ${app.name} to apply it.`);
    },
  },
  "unset-env": {
    usage: "unset-env NAME VAR", summary: "Remove an environment variable (restart to apply)",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const k = need(a, 1, "the variable name", this.usage);
      await api.patch(`/v3/apps/${app.guid}/env`, { var: { [k]: null } });
      out.say(`Removed ${k} from ${app.name}. Run skiff restart ${app.name} to apply it.`);
    },
  },
  routes: {
    usage: "routes [--json]", summary: "List routes in the targeted space",
    async run(a, out) {
      const { cfg, api } = client();
      const routes = await api.all(`/v3/routes?space_guids=${spaceOf(cfg).guid}`);
      if (has(a, "json")) return json(out, routes);
      const apps = new Map((await api.all(`/v3/apps?space_guids=${spaceOf(cfg).guid}`)).map((x: any) => [x.guid, x.name]));
      out.say(routes.length ? table(["url", "apps"], routes.map((r: any) => [r.url, r.destinations.map((d: any) => apps.get(d.app.guid) ?? d.app.guid).join(", ")])) : "No routes found.");
    },
  },
  "map-route": {
    usage: "map-route NAME DOMAIN [--hostname HOST] [--path PATH]", summary: "Map a route to an app",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const domain = need(a, 1, "the domain", this.usage);
      const route = await api.post("/v3/routes", { space_guid: spaceOf(cfg).guid, domain, host: str(a, "hostname", "n") ?? "", path: str(a, "path") ?? "" });
      await api.post(`/v3/routes/${route.guid}/destinations`, { app_guid: app.guid });
      out.say(`Mapped ${route.url} to ${app.name}.`);
    },
  },
  "unmap-route": {
    usage: "unmap-route NAME DOMAIN [--hostname HOST] [--path PATH]", summary: "Unmap a route from an app",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const domain = need(a, 1, "the domain", this.usage);
      const host = str(a, "hostname", "n") ?? "";
      const path = str(a, "path") ?? "";
      const url = `${host ? host + "." : ""}${domain}${path}`;
      const routes = await api.all(`/v3/routes?space_guids=${spaceOf(cfg).guid}`);
      const route = routes.find((r: any) => r.url === url);
      if (!route) throw new CliError(`Route ${url} not found. See: skiff routes`);
      await api.del(`/v3/routes/${route.guid}/destinations/${app.guid}`);
      out.say(`Unmapped ${url} from ${app.name}.`);
    },
  },
  domains: {
    usage: "domains", summary: "List domains",
    async run(a, out) {
      const d = await client().api.all("/v3/domains");
      if (has(a, "json")) return json(out, d);
      out.say(table(["name", "availability"], d.map((x: any) => [x.name, x.shared ? "shared" : "private"])));
    },
  },
  "create-domain": {
    usage: "create-domain DOMAIN", summary: "Add a shared domain (admin)",
    async run(a, out) {
      const d = await client().api.post("/v3/domains", { name: need(a, 0, "the domain", this.usage) });
      out.say(`Created domain ${d.name}.`);
    },
  },
  events: {
    usage: "events NAME [--json]", summary: "Show an app's recent audit events",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const ev = (await api.get(`/v3/events?target_guids=${app.guid}&per_page=50`)).resources;
      if (has(a, "json")) return json(out, ev);
      out.say(table(["time", "event", "actor", "description"], ev.map((e: any) => [e.created_at, e.type, e.actor.name, Object.entries(e.data ?? {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ")])));
    },
  },
  droplets: {
    usage: "droplets NAME [--json]", summary: "List an app's current and recent droplets",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const d = (await api.get(`/v3/apps/${app.guid}/droplets`)).resources;
      if (has(a, "json")) return json(out, d);
      out.say(table(["guid", "created", "buildpack", "sha256", "current"], d.map((x: any) => [x.guid, x.created_at, x.buildpack, x.sha256.slice(0, 12), x.current ? "*" : ""])));
    },
  },
  rollback: {
    usage: "rollback NAME [--droplet GUID]", summary: "Run the previous (or a given) droplet, rolling",
    async run(a, out) {
      const { cfg, api } = client();
      const app = await appByName(api, cfg, need(a, 0, "the app name", this.usage));
      const droplet = str(a, "droplet");
      const r = await api.post(`/v3/apps/${app.guid}/actions/rollback`, droplet ? { droplet_guid: droplet } : {});
      out.say(`Rolling ${app.name} back to droplet ${r.droplet_guid}.`);
    },
  },
  "create-user": {
    usage: "create-user USERNAME PASSWORD [--admin]", summary: "Create a user (admin)",
    async run(a, out) {
      const u = await client().api.post("/v3/users", { username: need(a, 0, "the username", this.usage), password: need(a, 1, "the password", this.usage), admin: has(a, "admin") });
      out.say(`Created user ${u.username}.`);
    },
  },
  "unlock-user": {
    usage: "unlock-user USERNAME", summary: "End a user's login lockout before its time (admin)",
    async run(a, out) {
      const { api } = client();
      const name = need(a, 0, "the username", this.usage);
      const user = (await api.all<{ guid: string; username: string }>("/v3/users")).find((u) => u.username === name);
      if (!user) throw new CliError(`no user named ${name}`);
      await api.patch(`/v3/users/${user.guid}/status`, { locked: false });
      out.say(`Unlocked ${name}: failed logins forgotten, the next login is checked as any other.`);
    },
  },
  "set-space-role": {
    usage: "set-space-role USERNAME ROLE (space_developer|space_manager|space_auditor)", summary: "Give a user a role in the targeted space (admin)",
    async run(a, out) {
      const { cfg, api } = client();
      const user = need(a, 0, "the username", this.usage);
      const type = need(a, 1, "the role", this.usage);
      await api.post("/v3/roles", { type, user, space_guid: spaceOf(cfg).guid });
      out.say(`Gave ${user} ${type} in ${cfg.space!.name}.`);
    },
  },
};
