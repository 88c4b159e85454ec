// The marketplace (offerings and their plans) and the service instances in the spaces the user can read.

import { html, type Html } from "../html.ts";
import { ago } from "./format.ts";
import { stateBadge } from "./layout.ts";

export function marketplaceBody(offerings: any[], plans: any[]): Html {
  if (offerings.length === 0) return html`<section class="card"><h1>Marketplace</h1><p class="muted">No service brokers are registered. An admin adds one with <code>skiff create-service-broker</code>.</p></section>`;
  return html`<section class="card"><h1>Marketplace</h1>
  <table class="list" id="offerings"><thead><tr><th>Offering</th><th>Description</th><th>Plans</th><th>Broker</th></tr></thead><tbody>
  ${offerings.map((o) => html`<tr><td><strong>${o.name}</strong>${o.tags?.length ? html`<div class="muted small">${o.tags.join(", ")}</div>` : null}</td><td>${o.description}</td>
    <td>${plans.filter((p) => p.relationships.service_offering.data.guid === o.guid).map((p) => html`<div><code>${p.name}</code> <span class="muted small">${p.free ? "free · " : ""}${p.description}</span></div>`)}</td>
    <td class="muted">${o.relationships.service_broker.data.name}</td></tr>`)}
  </tbody></table>
  <p class="muted">Create one: <code>skiff create-service OFFERING PLAN NAME</code>, then <code>skiff bind-service APP NAME</code> and <code>skiff restart APP</code>.</p>
  </section>`;
}

export function servicesBody(instances: any[], spaceName: Map<string, string>, boundApps: Map<string, string[]>): Html {
  return html`<section class="card"><h1>Service instances</h1>
  ${instances.length === 0 ? html`<p class="muted">None in the spaces you can see. The <a href="/console/marketplace">marketplace</a> lists what can be created.</p>` : html`
  <table class="list" id="service-instances"><thead><tr><th>Name</th><th>Offering / plan</th><th>Space</th><th>Last operation</th><th>Bound apps</th><th>Updated</th></tr></thead><tbody>
  ${instances.map((i) => html`<tr><td><strong>${i.name}</strong></td><td>${i.service_offering?.name ?? "?"} / ${i.service_plan?.name ?? "?"}</td>
    <td class="muted">${spaceName.get(i.relationships.space.data.guid) ?? "?"}</td>
    <td>${i.last_operation.type} ${stateBadge(i.last_operation.state.replace(" ", "_").toUpperCase())}${i.last_operation.state === "failed" && i.last_operation.description ? html`<div class="error small">${i.last_operation.description}</div>` : null}</td>
    <td>${(boundApps.get(i.guid) ?? []).join(", ") || html`<span class="muted">none</span>`}</td>
    <td class="muted">${ago(i.updated_at)}</td></tr>`)}
  </tbody></table>`}
  </section>`;
}
