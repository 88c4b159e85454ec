// What an instance tells the routers: its router.register message, and which uris a dea.update adds
// or removes. Pure.

import type { RouterRegister } from "../bus/index.ts";
import type { Instance } from "./instance.ts";

export function buildRouteMessage(host: string, i: Instance, uris: string[]): RouterRegister {
  return {
    host,
    port: i.port,
    uris,
    app: i.appId,
    private_instance_id: i.id,
    private_instance_index: String(i.index),
    tags: { component: "skiff-agent" },
  };
}

export function diffRoutes(current: readonly string[], wanted: readonly string[]): { added: string[]; removed: string[] } {
  return {
    added: wanted.filter((u) => !current.includes(u)),
    removed: current.filter((u) => !wanted.includes(u)),
  };
}
