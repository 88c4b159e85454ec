// The controller's record of an app's usable service binding, and the bus's shape of it: what
// `dea.<id>.start` carries and what bus/service-env.ts turns into VCAP_SERVICES and DATABASE_URL. Pure.

import type { ServiceBinding } from "../../bus/index.ts";
import type { Credentials } from "./types.ts";

export interface BoundService {
  /** The service instance's name, as the user gave it (`skiff create-service postgresql shared mydb`). */
  name: string;
  /** The catalog service's name (CF's "label"), e.g. "postgresql". */
  label: string;
  plan: string;
  tags?: string[];
  instanceGuid: string;
  bindingGuid: string;
  credentials: Credentials | Record<string, unknown>;
}

export function serviceBindingOf(b: BoundService): ServiceBinding {
  return {
    name: b.name,
    label: b.label,
    plan: b.plan,
    tags: b.tags ?? [],
    instance_guid: b.instanceGuid,
    binding_guid: b.bindingGuid,
    credentials: b.credentials as Record<string, unknown>,
  };
}
