// The CLI's HTTP client for the controller: bearer auth, JSON in and out, and errors that say
// what to do next. Every failure becomes a CliError with an exit code.

import { readFileSync } from "node:fs";
import type { CliConfig } from "./config.ts";

/**
 * A cluster's API over HTTPS with a certificate from the cluster's own CA (issue 27): SKIFF_TLS_CA names
 * the CA file (`skiff-node ca show` prints it); read once, never sent anywhere.
 */
let clusterCa: string | undefined | null = null;
function tlsOptions(): { tls?: { ca: string } } {
  if (clusterCa === null) {
    const file = process.env.SKIFF_TLS_CA;
    try {
      clusterCa = file ? readFileSync(file, "utf8") : undefined;
    } catch (err) {
      throw new CliError(`Cannot read the cluster's CA certificate ${file} (SKIFF_TLS_CA): ${(err as Error).message}`);
    }
  }
  return clusterCa ? { tls: { ca: clusterCa } } : {};
}

export class CliError extends Error {
  override name = "CliError";
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

export interface CfErrorBody {
  errors?: { code: number; title: string; detail: string }[];
}

export class ApiClient {
  constructor(readonly api: string, private readonly token?: string) {}

  static from(cfg: CliConfig, needToken = true): ApiClient {
    if (!cfg.api) throw new CliError("No API endpoint set. Run: skiff login -a http://127.0.0.1:9022 -u admin -p PASSWORD");
    if (needToken && !cfg.token) throw new CliError("Not logged in. Run: skiff login -a " + cfg.api + " -u USER -p PASSWORD");
    return new ApiClient(cfg.api.replace(/\/+$/, ""), cfg.token);
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `bearer ${this.token}` } : {}), ...extra };
  }

  async raw(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
    try {
      return await fetch(this.api + path, { method, body: init.body, headers: this.headers(init.headers), signal: init.signal, ...tlsOptions() });
    } catch (err) {
      if ((err as Error).name === "AbortError" || err instanceof CliError) throw err;
      throw new CliError(`Cannot reach the skiff API at ${this.api}: ${(err as Error).message}. Is the controller running? (skiff login -a URL to change it)`);
    }
  }

  async request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } });
    return this.parse<T>(res);
  }

  async parse<T>(res: Response): Promise<T> {
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = (json as CfErrorBody | undefined)?.errors?.[0];
      // a locked account's answer already says when to log in again
      if (res.status === 401 && e?.title !== "CF-AccountLocked") throw new CliError(`${e?.detail ?? "Not authenticated."} (run: skiff login)`);
      throw new CliError(e ? `${e.detail} [${e.title}]` : `HTTP ${res.status} from ${res.url}: ${text.slice(0, 300)}`);
    }
    return json as T;
  }

  get = <T = any>(path: string) => this.request<T>("GET", path);
  post = <T = any>(path: string, body: unknown = {}) => this.request<T>("POST", path, body);
  patch = <T = any>(path: string, body: unknown) => this.request<T>("PATCH", path, body);
  del = <T = any>(path: string) => this.request<T>("DELETE", path);

  /** Every page of a list. */
  async all<T = any>(path: string): Promise<T[]> {
    const out: T[] = [];
    let next: string | null = path + (path.includes("?") ? "&" : "?") + "per_page=500";
    for (let i = 0; next && i < 1000; i++) {
      const page: { resources: T[]; pagination?: { next?: { href: string } | null } } = await this.get(next);
      out.push(...page.resources);
      next = page.pagination?.next?.href ?? null;
    }
    return out;
  }
}
