// Cloud Foundry manifests (`manifest.yml`): the fields skiff understands, validated into one
// typed shape per app, with errors that name the app and the field.

import { dirname, resolve } from "node:path";
import { parseYaml, YamlError } from "./yaml.ts";

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

export function parseManifest(text: string, file = "manifest.yml"): { apps: AppManifest[]; warnings: string[] } {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    if (err instanceof YamlError) throw new ManifestError(`${file} is not valid YAML: ${err.message}`);
    throw err;
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new ManifestError(`${file}: expected a mapping with an "applications" list`);
  const top = doc as Record<string, unknown>;
  const list = top.applications;
  if (!Array.isArray(list) || list.length === 0) throw new ManifestError(`${file}: "applications" must be a non-empty list`);
  const warnings: string[] = [];
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
      if (a[k] === undefined) return undefined;
      if (typeof a[k] !== "boolean") throw new ManifestError(`${where}: "${k}" must be true or false`);
      return a[k] as boolean;
    };
    out.path = str("path");
    if (a.instances !== undefined) {
      if (typeof a.instances !== "number" || !Number.isInteger(a.instances) || a.instances < 0) throw new ManifestError(`${where}: "instances" must be a whole number ≥ 0`);
      out.instances = a.instances;
    }
    if (a.memory !== undefined) out.memory = parseMegabytes(a.memory, `${where}: memory`);
    if (a.disk_quota !== undefined) out.disk_quota = parseMegabytes(a.disk_quota, `${where}: disk_quota`);
    if (a.buildpacks !== undefined) {
      if (!Array.isArray(a.buildpacks) || a.buildpacks.some((b) => typeof b !== "string")) throw new ManifestError(`${where}: "buildpacks" must be a list of names`);
      out.buildpacks = a.buildpacks as string[];
    } else if (typeof a.buildpack === "string") out.buildpacks = [a.buildpack];
    out.command = str("command");
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
    if (a["default-route"] === false) out.no_route = out.no_route ?? false;
    if (a.services !== undefined) {
      if (!Array.isArray(a.services)) throw new ManifestError(`${where}: "services" must be a list of service instance names`);
      out.services = a.services.map((s) => (typeof s === "object" && s ? String((s as Record<string, unknown>).name) : String(s)));
    }
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
  });
  return { apps, warnings };
}

/** Where an app's files are: its `path` relative to the manifest, else the manifest's folder. */
export function appDir(app: AppManifest, manifestFile: string): string {
  return resolve(dirname(manifestFile), app.path ?? ".");
}
