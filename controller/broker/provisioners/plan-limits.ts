// A plan's limits live in its catalog entry (`metadata.limits`), so the figures the marketplace shows are
// the ones the provisioner enforces; `limitedPlan` writes one entry from them (description and bullets too).

import type { CatalogPlan } from "../types.ts";

export interface LimitedPlanSpec {
  id: string;
  name: string;
  /** What the plan is, before its figures: "A database on a shared PostgreSQL server". */
  summary: string;
  /** Each limit: its figure, and how a person reads it ("connections per binding"). */
  limits: Record<string, { value: number; reads: string; how: string }>;
}

/** A catalog plan whose description, metadata.bullets and metadata.limits all carry the same figures. */
export function limitedPlan(spec: LimitedPlanSpec): CatalogPlan {
  const figures = Object.values(spec.limits).map((l) => `${l.value} ${l.reads}`);
  return {
    id: spec.id,
    name: spec.name,
    description: `${spec.summary}; at most ${figures.join(", ")}`,
    free: true,
    metadata: {
      displayName: spec.name,
      bullets: [spec.summary, ...Object.values(spec.limits).map((l) => `${l.value} ${l.reads} (${l.how})`)],
      limits: Object.fromEntries(Object.entries(spec.limits).map(([k, l]) => [k, l.value])),
    },
  };
}

/** A plan's figure for one limit; undefined for a plan without it (one no longer in the catalog). */
export function planLimit(plan: CatalogPlan, name: string): number | undefined {
  const limits = plan.metadata?.limits;
  if (typeof limits !== "object" || limits === null) return undefined;
  const v = (limits as Record<string, unknown>)[name];
  return typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : undefined;
}
