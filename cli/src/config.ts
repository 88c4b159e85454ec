// The CLI's saved state in $SKIFF_HOME/config.json (default ~/.skiff): API URL, token, target.

import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface CliConfig {
  api?: string;
  token?: string;
  username?: string;
  org?: { guid: string; name: string };
  space?: { guid: string; name: string };
}

export const skiffHome = (env = process.env) => env.SKIFF_HOME || join(homedir(), ".skiff");

export function loadConfig(env = process.env): CliConfig {
  const file = join(skiffHome(env), "config.json");
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, "utf8")) as CliConfig;
  } catch {
    return {};
  }
}

export function saveConfig(cfg: CliConfig, env = process.env): void {
  const dir = skiffHome(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify(cfg, null, 2) + "\n", { mode: 0o600 });
  chmodSync(file, 0o600);
}
