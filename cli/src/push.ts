// `skiff push`: create or update the app from flags and manifest, pack the directory as a gzip
// tar, upload it with progress, start it while streaming the staging log, and wait until an
// instance of the new release is RUNNING.

import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { ApiClient, CliError } from "./client.ts";
import type { CliConfig } from "./config.ts";
import { appDir, parseManifest, ManifestError, type AppManifest, type ProcessManifest } from "./manifest.ts";
import { bytes } from "./table.ts";
import { formatLine, type LogLineJson, type Out } from "./output.ts";
import { bindService } from "./service-commands.ts";

export interface PushOptions {
  /** the app's folder (`-p PATH`, or the old folder-as-first-argument form) */
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

/**
 * `skiff push NAME [-p PATH]` as `cf push` reads it: the first positional is the app's name. The old
 * `skiff push DIR` stays where it cannot be a name: a path with a slash, `.` or `..` (app names hold
 * no slash and start with a letter or digit).
 */
export function pushTarget(positional: string[], flags: { name?: string; path?: string }): { name?: string; dir?: string; hint?: string } {
  const [first, ...rest] = positional;
  if (rest.length) throw new CliError(`push takes one app name, not ${positional.length} words (${positional.join(" ")}). Usage: skiff push NAME [-p PATH]`, 2);
  if (first === undefined) return { name: flags.name, dir: flags.path };
  const isPath = first.includes("/") || first === "." || first === "..";
  if (isPath) {
    if (flags.path !== undefined) throw new CliError(`give the app's folder once: ${first} or -p ${flags.path}`, 2);
    return { name: flags.name, dir: first };
  }
  if (flags.name !== undefined && flags.name !== first) throw new CliError(`give the app's name once: ${first} or --name ${flags.name}`, 2);
  const hint =
    flags.path === undefined && existsSync(first) && statSync(first).isDirectory()
      ? `pushing the current folder as the app "${first}"; to push the folder ./${first}, run: skiff push ${first} -p ./${first}`
      : undefined;
  return { name: first, dir: flags.path, hint };
}

function resolveApps(opts: PushOptions): { app: AppManifest; dir: string; warnings: string[] } {
  const dir = resolve(opts.dir ?? ".");
  // checked before anything is created: a wrong folder must not leave an app behind
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`${opts.dir ?? dir} is not a folder: pass the app's folder with -p PATH (skiff push NAME -p PATH), or set path: in the manifest`);
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
    if (!existsSync(appPath) || !statSync(appPath).isDirectory()) throw new CliError(`${appPath} (the manifest's path: for ${app.name}) is not a folder`);
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

function processAttributes(p: ProcessManifest) {
  const hc: Record<string, unknown> = {};
  if (p.health_check_type) hc.type = p.health_check_type;
  if (p.health_check_http_endpoint) hc.data = { endpoint: p.health_check_http_endpoint };
  if (p.timeout) hc.data = { ...(hc.data as object), timeout: p.timeout };
  return {
    ...(p.instances !== undefined ? { instances: p.instances } : {}),
    ...(p.memory !== undefined ? { memory_in_mb: p.memory } : {}),
    ...(p.disk_quota !== undefined ? { disk_in_mb: p.disk_quota } : {}),
    ...(p.command !== undefined ? { command: p.command } : {}),
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

/** What a push made before its first upload, so that a push failing there can take it back. */
interface Made {
  app?: { guid: string; name: string };
  /** the app existed before this push: nothing of it is deleted */
  existing?: { guid: string; name: string };
  routes: { guid: string; url: string }[];
}

/** Undoes what a push made before it failed, and says plainly what is left. */
async function undo(api: ApiClient, made: Made, out: Out): Promise<void> {
  const removed: string[] = [];
  const left: string[] = [];
  if (made.app) {
    try {
      await api.del(`/v3/apps/${made.app.guid}`);
      removed.push(`app ${made.app.name}`);
    } catch (err) {
      left.push(`app ${made.app.name} (could not delete it: ${(err as Error).message}; run skiff delete ${made.app.name} -f)`);
    }
  }
  for (const r of made.routes) {
    try {
      await api.del(`/v3/routes/${r.guid}`);
      removed.push(`route ${r.url}`);
    } catch (err) {
      left.push(`route ${r.url} (could not delete it: ${(err as Error).message})`);
    }
  }
  if (made.existing) left.push(`app ${made.existing.name}, which existed before this push (it keeps the settings this push gave it, and its earlier package and droplet)`);
  if (removed.length) out.warn(`the push failed before its upload; removed what it had created: ${removed.join(", ")}`);
  if (left.length) out.warn(`left in place: ${left.join("; ")}`);
  if (!removed.length && !left.length) out.warn("the push failed before creating anything");
}

export async function push(cfg: CliConfig, opts: PushOptions, out: Out): Promise<void> {
  const api = ApiClient.from(cfg);
  if (!cfg.space) throw new CliError("No space targeted. Run: skiff target -o ORG -s SPACE");
  const space = cfg.space;
  const { app: m, dir, warnings } = resolveApps(opts);
  for (const w of warnings) out.warn(w);
  out.say(`Pushing app ${m.name} to org ${cfg.org?.name ?? "?"} / space ${space.name} as ${cfg.username ?? "?"}...`);

  // packed first: a folder tar cannot read fails the push before anything exists on the platform
  out.say(`Packing ${dir}...`);
  const pkg = await packDir(dir);

  const made: Made = { routes: [] };
  let app: any;
  let uploaded: any;
  try {
    // the manifest's routes are claimed first: one the controller refuses (another space's host, say)
    // stops the push before an app is created
    const routes = [];
    for (const url of m.no_route ? [] : m.routes ?? []) {
      const res = await api.raw("POST", "/v3/routes", { body: JSON.stringify({ space_guid: space.guid, url }), headers: { "content-type": "application/json" } });
      const route = await api.parse<any>(res);
      if (res.status === 201) made.routes.push({ guid: route.guid, url: route.url });
      routes.push(route);
    }
    const found = await api.get(`/v3/apps?names=${encodeURIComponent(m.name)}&space_guids=${space.guid}`);
    app = found.resources[0];
    if (!app) {
      const before = new Set((await api.all(`/v3/routes?space_guids=${space.guid}`)).map((r: any) => r.guid));
      app = await api.post("/v3/apps", { name: m.name, space_guid: space.guid, no_route: !!(m.no_route || m.routes?.length), random_route: !!m.random_route, ...appAttributes(m) });
      made.app = { guid: app.guid, name: app.name };
      // its default route, when this push made it (an unmapped one of the space may have been reused)
      if ((app.routes ?? []).length)
        for (const r of await api.all(`/v3/routes?space_guids=${space.guid}`)) if (!before.has(r.guid) && (app.routes as string[]).includes(r.url)) made.routes.push({ guid: r.guid, url: r.url });
      out.say(`Created app ${m.name}.`);
    } else {
      made.existing = { guid: app.guid, name: app.name };
      if (Object.keys(appAttributes(m)).length) app = await api.patch(`/v3/apps/${app.guid}`, appAttributes(m));
    }
    for (const p of m.processes ?? []) await api.patch(`/v3/apps/${app.guid}/processes/${encodeURIComponent(p.type)}`, processAttributes(p));
    for (const route of routes) await api.post(`/v3/routes/${route.guid}/destinations`, { app_guid: app.guid });

    // manifest `services:` are bound before the start, so the first instances already have the credentials
    for (const name of m.services ?? []) await bindService(api, cfg, app, name, out);

    const res = await api.raw("PUT", `/v3/apps/${app.guid}/bits`, { body: withProgress(pkg, out), headers: { "content-type": "application/gzip", "content-length": String(pkg.length) } });
    uploaded = await api.parse<any>(res);
  } catch (err) {
    await undo(api, made, out).catch(() => undefined);
    throw err;
  }
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
  await sayProcesses(api, app.guid, out);
  if (final.routes?.length) out.say(`App ${final.name} is running at http://${final.routes[0]}`);
}

/** One line per process type beyond web: `worker: 2 instance(s), 128M`. */
async function sayProcesses(api: ApiClient, guid: string, out: Out): Promise<void> {
  const list = await api.get(`/v3/apps/${guid}/processes`).catch(() => undefined);
  for (const p of list?.resources ?? []) if (p.type !== "web") out.say(`${`${p.type}:`.padEnd(10)}${p.instances} instance(s), ${p.memory_in_mb}M memory${p.command ? `, ${p.command}` : ""}`);
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
