// `skiff push`: create or update the app from flags and manifest, pack the directory as a gzip
// tar, upload it with progress, start it while streaming the staging log, and wait until an
// instance of the new release is RUNNING.

import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { ApiClient, CliError } from "./client.ts";
import type { CliConfig } from "./config.ts";
import { appDir, parseManifest, ManifestError, type AppManifest } from "./manifest.ts";
import { bytes } from "./table.ts";
import { formatLine, type LogLineJson, type Out } from "./output.ts";
import { bindService } from "./service-commands.ts";

export interface PushOptions {
  dir?: string;
  manifest?: string;
  name?: string;
  instances?: number;
  memory?: number;
  disk?: number;
  command?: string;
  buildpack?: string;
  randomRoute?: boolean;
  noRoute?: boolean;
  noStart?: boolean;
  noWait?: boolean;
  timeoutSec?: number;
}

/** Packs a directory as a gzip tar with the system tar, leaving out VCS folders and .cfignore'd names. */
export async function packDir(dir: string): Promise<Uint8Array> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`${dir} is not a directory; pass the app's folder (skiff push DIR) or set path: in the manifest`);
  const excludes = [".git", ".svn", ".hg", ".skiff", ".cfignore", "manifest.yml"].map((e) => `--exclude=./${e}`);
  const ignore = join(dir, ".cfignore");
  if (existsSync(ignore))
    for (const l of readFileSync(ignore, "utf8").split("\n").map((s) => s.trim()).filter((s) => s && !s.startsWith("#"))) excludes.push(`--exclude=${l.replace(/^\//, "./")}`);
  const p = Bun.spawn(["tar", "-czf", "-", ...excludes, "-C", dir, "."], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).arrayBuffer(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new CliError(`could not pack ${dir}: ${err.trim()}`);
  return new Uint8Array(out);
}

function resolveApps(opts: PushOptions): { app: AppManifest; dir: string; warnings: string[] } {
  const dir = resolve(opts.dir ?? ".");
  const manifestFile = opts.manifest ? resolve(opts.manifest) : existsSync(join(dir, "manifest.yml")) ? join(dir, "manifest.yml") : undefined;
  if (opts.manifest && !existsSync(manifestFile!)) throw new CliError(`manifest ${opts.manifest} not found`);
  let app: AppManifest;
  let appPath = dir;
  let warnings: string[] = [];
  if (manifestFile) {
    let parsed;
    try {
      parsed = parseManifest(readFileSync(manifestFile, "utf8"), basename(manifestFile));
    } catch (err) {
      if (err instanceof ManifestError) throw new CliError(`${err.message}\nFix the manifest, or push without it: skiff push DIR --name NAME`);
      throw err;
    }
    warnings = parsed.warnings;
    const chosen = opts.name ? parsed.apps.find((a) => a.name === opts.name) : parsed.apps.length === 1 ? parsed.apps[0] : undefined;
    if (!chosen && opts.name && parsed.apps.length === 1) app = { ...parsed.apps[0]!, name: opts.name };
    else if (!chosen) throw new CliError(`the manifest lists ${parsed.apps.length} apps (${parsed.apps.map((a) => a.name).join(", ")}); pick one with --name`);
    else app = chosen;
    appPath = opts.dir && !app.path ? dir : appDir(app, manifestFile);
  } else {
    app = { name: opts.name ?? basename(dir) };
  }
  if (opts.instances !== undefined) app.instances = opts.instances;
  if (opts.memory !== undefined) app.memory = opts.memory;
  if (opts.disk !== undefined) app.disk_quota = opts.disk;
  if (opts.command !== undefined) app.command = opts.command;
  if (opts.buildpack !== undefined) app.buildpacks = [opts.buildpack];
  if (opts.randomRoute) app.random_route = true;
  if (opts.noRoute) app.no_route = true;
  return { app, dir: appPath, warnings };
}

function appAttributes(m: AppManifest) {
  const hc: Record<string, unknown> = {};
  if (m.health_check_type) hc.type = m.health_check_type;
  if (m.health_check_http_endpoint) hc.endpoint = m.health_check_http_endpoint;
  if (m.timeout) hc.timeout = m.timeout;
  return {
    ...(m.instances !== undefined ? { instances: m.instances } : {}),
    ...(m.memory !== undefined ? { memory_in_mb: m.memory } : {}),
    ...(m.disk_quota !== undefined ? { disk_in_mb: m.disk_quota } : {}),
    ...(m.command !== undefined ? { command: m.command } : {}),
    ...(m.buildpacks?.length ? { buildpack: m.buildpacks[0] } : {}),
    ...(m.env ? { environment_variables: m.env } : {}),
    ...(Object.keys(hc).length ? { health_check: hc } : {}),
  };
}

/** An upload body that reports how much has been sent. */
function withProgress(data: Uint8Array, out: Out): ReadableStream<Uint8Array> {
  const chunk = 256 * 1024;
  let off = 0;
  let lastPct = -1;
  return new ReadableStream({
    pull(controller) {
      if (off >= data.length) {
        controller.close();
        return;
      }
      const end = Math.min(off + chunk, data.length);
      controller.enqueue(data.subarray(off, end));
      off = end;
      const pct = Math.floor((off / data.length) * 100);
      if (out.tty && pct !== lastPct) {
        lastPct = pct;
        out.progress(`Uploading ${bytes(off)} / ${bytes(data.length)} (${pct}%)`);
      }
    },
  });
}

export async function push(cfg: CliConfig, opts: PushOptions, out: Out): Promise<void> {
  const api = ApiClient.from(cfg);
  if (!cfg.space) throw new CliError("No space targeted. Run: skiff target -o ORG -s SPACE");
  const { app: m, dir, warnings } = resolveApps(opts);
  for (const w of warnings) out.warn(w);
  out.say(`Pushing app ${m.name} to org ${cfg.org?.name ?? "?"} / space ${cfg.space.name} as ${cfg.username ?? "?"}...`);

  // the manifest's routes are claimed first: one the controller refuses (another space's host, say)
  // stops the push before an app is created
  const routes = [];
  for (const url of m.no_route ? [] : m.routes ?? []) routes.push(await api.post("/v3/routes", { space_guid: cfg.space.guid, url }));
  const found = await api.get(`/v3/apps?names=${encodeURIComponent(m.name)}&space_guids=${cfg.space.guid}`);
  let app = found.resources[0];
  if (!app) {
    app = await api.post("/v3/apps", { name: m.name, space_guid: cfg.space.guid, no_route: !!(m.no_route || m.routes?.length), random_route: !!m.random_route, ...appAttributes(m) });
    out.say(`Created app ${m.name}.`);
  } else if (Object.keys(appAttributes(m)).length) {
    app = await api.patch(`/v3/apps/${app.guid}`, appAttributes(m));
  }
  for (const route of routes) await api.post(`/v3/routes/${route.guid}/destinations`, { app_guid: app.guid });

  // manifest `services:` are bound before the start, so the first instances already have the credentials
  for (const name of m.services ?? []) await bindService(api, cfg, app, name, out);

  out.say(`Packing ${dir}...`);
  const pkg = await packDir(dir);
  const res = await api.raw("PUT", `/v3/apps/${app.guid}/bits`, { body: withProgress(pkg, out), headers: { "content-type": "application/gzip", "content-length": String(pkg.length) } });
  const uploaded = await api.parse<any>(res);
  out.progressDone(`Uploaded ${bytes(pkg.length)} (sha256 ${String(uploaded.package_sha256).slice(0, 12)}).`);
  if (opts.noStart) return;

  // Stream the app's log (staging output first) while it starts.
  const abort = new AbortController();
  const position = await logPosition(api, app.guid);
  const streaming = streamLogs(api, app.guid, abort.signal, (l) => out.say(l), position).catch(() => undefined);
  const needsStaging = uploaded.package_state !== "STAGED";
  const started = await api.post(`/v3/apps/${app.guid}/actions/${needsStaging || uploaded.state !== "STARTED" ? "start" : "restart"}`);
  if (opts.noWait) {
    abort.abort();
    out.say(`Started ${m.name}; not waiting (--no-wait).`);
    return;
  }
  try {
    await waitRunning(api, app.guid, started.release, needsStaging, (opts.timeoutSec ?? 300) * 1000);
    await Bun.sleep(300); // the app's first lines
  } finally {
    abort.abort();
    await streaming;
  }
  const final = await api.get(`/v3/apps/${app.guid}`);
  out.say("");
  out.say(`name:     ${final.name}`);
  out.say(`routes:   ${(final.routes ?? []).map((r: string) => r).join(", ") || "(none)"}`);
  out.say(`state:    ${final.state}, ${final.instances} instance(s), ${final.memory_in_mb}M memory`);
  if (final.routes?.length) out.say(`App ${final.name} is running at http://${final.routes[0]}`);
}

async function waitRunning(api: ApiClient, guid: string, release: number, staging: boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let targetRelease = release;
  while (Date.now() < deadline) {
    const app = await api.get(`/v3/apps/${guid}`);
    if (app.package_state === "FAILED") throw new CliError(`Staging failed: ${app.staging_error ?? "unknown error"}\nSee the log above; fix the app and push again (skiff logs ${app.name} --recent).`);
    if (staging && app.package_state !== "STAGED") {
      await Bun.sleep(100); // staging a small app takes ~100 ms: a coarser poll would dominate the push
      continue;
    }
    targetRelease = app.release;
    if (app.instances === 0) return;
    const inst = await api.get(`/v3/apps/${guid}/instances`);
    const mine = inst.resources.filter((r: any) => typeof r.version === "string" && r.version.endsWith(`-${targetRelease}`));
    if (mine.some((r: any) => r.state === "RUNNING")) return;
    const down = inst.resources.filter((r: any) => r.state === "FLAPPING");
    if (down.length) throw new CliError(`The app is crashing (${down[0].details ?? "see logs"}). Check: skiff logs ${app.name} --recent`);
    await Bun.sleep(150);
  }
  throw new CliError(`Timed out waiting for an instance to run. Check: skiff app NAME and skiff logs NAME --recent`);
}

/** Long-polls the app's live log until aborted, handing each formatted line to `print`. */
export async function streamLogs(api: ApiClient, guid: string, signal: AbortSignal, print: (line: string) => void, start?: number): Promise<void> {
  let next = start ?? (await api.get(`/v3/apps/${guid}/logs/poll`)).next;
  while (!signal.aborted) {
    let r: { next: number; resources: LogLineJson[] };
    try {
      const res = await api.raw("GET", `/v3/apps/${guid}/logs/poll?after=${next}&wait=20`, { signal });
      r = await api.parse(res);
    } catch (err) {
      if (signal.aborted || (err as Error).name === "AbortError") return;
      throw err;
    }
    for (const l of r.resources) print(formatLine(l));
    next = r.next;
  }
}

/** Starts listening to the app's log now, so nothing said after this call is missed. */
export async function logPosition(api: ApiClient, guid: string): Promise<number> {
  return (await api.get(`/v3/apps/${guid}/logs/poll`)).next;
}
