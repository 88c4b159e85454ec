// Cloud Foundry manifests (`manifest.yml`): the fields skiff understands, validated into one
// typed shape per app, with errors that name the app and the field.

import { dirname, resolve } from "node:path";
import { parseYamlDocuments, YamlError } from "./yaml.ts";

export const PROCESS_TYPE = /^[A-Za-z0-9_-]{1,63}$/;

/** One entry of an app's `processes:` list (CF v3's manifest): a process type and its own settings. */
export interface ProcessManifest {
  type: string;
  command?: string;
  instances?: number;
  memory?: number;
  disk_quota?: number;
  health_check_type?: "port" | "http" | "process";
  health_check_http_endpoint?: string;
  timeout?: number;
}

export interface AppManifest {
  name: string;
  path?: string;
  instances?: number;
  memory?: number;
  disk_quota?: number;
  buildpacks?: string[];
  command?: string;
  env?: Record<string, string>;
  routes?: string[];
  random_route?: boolean;
  no_route?: boolean;
  services?: string[];
  health_check_type?: "port" | "http" | "process";
  health_check_http_endpoint?: string;
  timeout?: number;
  /** the manifest's `processes:`; the app's own fields above are its `web` process's */
  processes?: ProcessManifest[];
}

export class ManifestError extends Error {
  override name = "ManifestError";
}

/** "256M", "1G", "512MB", "1024" → megabytes */
export function parseMegabytes(v: unknown, field: string): number {
  if (typeof v === "number" && Number.isInteger(v) && v > 0) return v;
  const m = typeof v === "string" ? /^(\d+)\s*(M|MB|G|GB|T|TB)?$/i.exec(v.trim()) : null;
  if (!m) throw new ManifestError(`${field}: "${v}" is not a size; write e.g. 256M or 1G`);
  const n = Number(m[1]);
  const unit = (m[2] ?? "M").toUpperCase()[0];
  return unit === "G" ? n * 1024 : unit === "T" ? n * 1024 * 1024 : n;
}

const KNOWN = new Set(["name", "path", "instances", "memory", "disk_quota", "buildpacks", "buildpack", "command", "env", "routes", "random-route", "no-route", "services", "health-check-type", "health-check-http-endpoint", "timeout", "stack", "processes", "default-route"]);

/** The fields shared by an app (its web process) and each entry of `processes:`, read from one mapping. */
function readProcessFields(a: Record<string, unknown>, where: string): Omit<ProcessManifest, "type"> {
  const out: Omit<ProcessManifest, "type"> = {};
  const str = (k: string) => {
    if (a[k] === undefined || a[k] === null) return undefined;
    if (typeof a[k] !== "string" && typeof a[k] !== "number") throw new ManifestError(`${where}: "${k}" must be a string`);
    return String(a[k]);
  };
  if (a.instances !== undefined) {
    if (typeof a.instances !== "number" || !Number.isInteger(a.instances) || a.instances < 0) throw new ManifestError(`${where}: "instances" must be a whole number ≥ 0`);
    out.instances = a.instances;
  }
  if (a.memory !== undefined) out.memory = parseMegabytes(a.memory, `${where}: memory`);
  if (a.disk_quota !== undefined) out.disk_quota = parseMegabytes(a.disk_quota, `${where}: disk_quota`);
  out.command = str("command");
  const hct = str("health-check-type");
  if (hct !== undefined) {
    const t = hct === "none" ? "process" : hct;
    if (t !== "port" && t !== "http" && t !== "process") throw new ManifestError(`${where}: "health-check-type" must be port, http or process`);
    out.health_check_type = t;
  }
  out.health_check_http_endpoint = str("health-check-http-endpoint");
  if (out.health_check_http_endpoint !== undefined && !out.health_check_http_endpoint.startsWith("/")) throw new ManifestError(`${where}: "health-check-http-endpoint" must start with /`);
  if (a.timeout !== undefined) {
    if (typeof a.timeout !== "number" || !Number.isInteger(a.timeout) || a.timeout < 1 || a.timeout > 600) throw new ManifestError(`${where}: "timeout" must be seconds from 1 to 600`);
    out.timeout = a.timeout;
  }
  return out;
}

const PROCESS_KNOWN = new Set(["type", "command", "instances", "memory", "disk_quota", "health-check-type", "health-check-http-endpoint", "timeout", "health-check-invocation-timeout"]);

/** cf reads manifests as YAML 1.1, where yes/no/on/off are booleans too. */
const BOOLEAN_WORDS: Record<string, boolean> = { true: true, yes: true, on: true, false: false, no: false, off: false };

export function parseManifest(text: string, file = "manifest.yml"): { apps: AppManifest[]; warnings: string[] } {
  let docs;
  try {
    docs = parseYamlDocuments(text).filter((d) => d.value !== null && d.value !== undefined);
  } catch (err) {
    if (err instanceof YamlError) throw new ManifestError(`${file} is not valid YAML: ${err.message}`);
    throw err;
  }
  const warnings: string[] = [];
  // cf reads the first document of a manifest; one that holds more gets told what was left out
  if (docs.length > 1) warnings.push(`${file} holds ${docs.length} YAML documents; only the first is read (the others start at line ${docs.slice(1).map((d) => d.line).join(", ")})`);
  const doc = docs[0]?.value;
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new ManifestError(`${file}: expected a mapping with an "applications" list`);
  const top = doc as Record<string, unknown>;
  const list = top.applications;
  if (!Array.isArray(list) || list.length === 0) throw new ManifestError(`${file}: "applications" must be a non-empty list`);
  const apps = list.map((raw, i) => {
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new ManifestError(`${file}: applications[${i}] must be a mapping`);
    const a = raw as Record<string, unknown>;
    const where = `${file}: application ${typeof a.name === "string" ? `"${a.name}"` : `#${i + 1}`}`;
    for (const k of Object.keys(a)) if (!KNOWN.has(k)) warnings.push(`${where}: field "${k}" is not supported and was ignored`);
    if (typeof a.name !== "string" || a.name === "") throw new ManifestError(`${where}: "name" is required`);
    const out: AppManifest = { name: a.name };
    const str = (k: string) => {
      if (a[k] === undefined || a[k] === null) return undefined;
      if (typeof a[k] !== "string" && typeof a[k] !== "number") throw new ManifestError(`${where}: "${k}" must be a string`);
      return String(a[k]);
    };
    const bool = (k: string) => {
      const v = a[k];
      if (v === undefined) return undefined;
      if (typeof v === "boolean") return v;
      const word = typeof v === "string" ? BOOLEAN_WORDS[v.toLowerCase()] : undefined;
      if (word === undefined) throw new ManifestError(`${where}: "${k}" must be true or false`);
      return word;
    };
    out.path = str("path");
    const web = readProcessFields(a, where);
    if (web.instances !== undefined) out.instances = web.instances;
    if (web.memory !== undefined) out.memory = web.memory;
    if (web.disk_quota !== undefined) out.disk_quota = web.disk_quota;
    if (a.buildpacks !== undefined) {
      if (!Array.isArray(a.buildpacks) || a.buildpacks.some((b) => typeof b !== "string")) throw new ManifestError(`${where}: "buildpacks" must be a list of names`);
      out.buildpacks = a.buildpacks as string[];
    } else if (typeof a.buildpack === "string") out.buildpacks = [a.buildpack];
    out.command = web.command;
    if (a.env !== undefined && a.env !== null) {
      if (typeof a.env !== "object" || Array.isArray(a.env)) throw new ManifestError(`${where}: "env" must be a mapping of NAME: value`);
      out.env = Object.fromEntries(Object.entries(a.env as Record<string, unknown>).map(([k, v]) => [k, v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v)]));
    }
    if (a.routes !== undefined) {
      if (!Array.isArray(a.routes)) throw new ManifestError(`${where}: "routes" must be a list of "- route: host.domain/path"`);
      out.routes = a.routes.map((r, j) => {
        const route = r && typeof r === "object" ? (r as Record<string, unknown>).route : r;
        if (typeof route !== "string" || route === "") throw new ManifestError(`${where}: routes[${j}] must be "- route: host.domain/path"`);
        return route;
      });
    }
    out.random_route = bool("random-route");
    out.no_route = bool("no-route");
    if (bool("default-route") === false) out.no_route = out.no_route ?? false;
    if (a.services !== undefined) {
      if (!Array.isArray(a.services)) throw new ManifestError(`${where}: "services" must be a list of service instance names`);
      out.services = a.services.map((s) => (typeof s === "object" && s ? String((s as Record<string, unknown>).name) : String(s)));
    }
    out.health_check_type = web.health_check_type;
    out.health_check_http_endpoint = web.health_check_http_endpoint;
    out.timeout = web.timeout;
    if (a.processes !== undefined && a.processes !== null) {
      if (!Array.isArray(a.processes)) throw new ManifestError(`${where}: "processes" must be a list of "- type: NAME" entries`);
      const seen = new Set<string>();
      out.processes = a.processes.map((p, j) => {
        if (!p || typeof p !== "object" || Array.isArray(p)) throw new ManifestError(`${where}: processes[${j}] must be a mapping with a "type"`);
        const entry = p as Record<string, unknown>;
        const type = entry.type;
        if (typeof type !== "string" || !PROCESS_TYPE.test(type)) throw new ManifestError(`${where}: processes[${j}] needs a "type" of letters, digits, "-" and "_" (web, worker, …)`);
        if (seen.has(type)) throw new ManifestError(`${where}: process type "${type}" is listed twice`);
        seen.add(type);
        const at = `${where}: process "${type}"`;
        for (const k of Object.keys(entry)) if (!PROCESS_KNOWN.has(k)) warnings.push(`${at}: field "${k}" is not supported and was ignored`);
        const fields = readProcessFields(entry, at);
        return Object.fromEntries(Object.entries({ type, ...fields }).filter(([, v]) => v !== undefined)) as unknown as ProcessManifest;
      });
    }
    return out;
  });
  return { apps, warnings };
}

/** Where an app's files are: its `path` relative to the manifest, else the manifest's folder. */
export function appDir(app: AppManifest, manifestFile: string): string {
  return resolve(dirname(manifestFile), app.path ?? ".");
}
