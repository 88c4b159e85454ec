// The first page: the orgs and spaces the user can see, and their apps (state, instances running of
// desired, memory, routes, last push), all from the API as that user.

import { html, type Html } from "../html.ts";
import { ago, megabytes } from "./format.ts";
import { stateBadge } from "./layout.ts";

export interface HomeData {
  orgs: { guid: string; name: string }[];
  spaces: { guid: string; name: string; relationships: { organization: { data: { guid: string } } } }[];
  apps: { guid: string; name: string; state: string; instances: number; memory_in_mb: number; routes?: string[]; package_state: string; relationships: { space: { data: { guid: string } } } }[];
  /** RUNNING instances per app guid, from the heartbeats */
  running: Map<string, number>;
  /** the newest droplet per app guid (audit.app.droplet.create) */
  lastPush: Map<string, string>;
  space?: string;
}

export function homeBody(d: HomeData): Html {
  const spaceName = new Map(d.spaces.map((s) => [s.guid, s.name]));
  const orgOf = new Map(d.spaces.map((s) => [s.guid, s.relationships.organization.data.guid]));
  const orgName = new Map(d.orgs.map((o) => [o.guid, o.name]));
  const counts = new Map<string, number>();
  for (const a of d.apps) counts.set(a.relationships.space.data.guid, (counts.get(a.relationships.space.data.guid) ?? 0) + 1);
  const apps = d.space ? d.apps.filter((a) => a.relationships.space.data.guid === d.space) : d.apps;
  const tree = d.orgs.map((o) => html`<li><span class="org">${o.name}</span><ul>${d.spaces
    .filter((s) => s.relationships.organization.data.guid === o.guid)
    .map((s) => html`<li><a href="/console/?space=${s.guid}" class="${d.space === s.guid ? "current" : ""}">${s.name}</a> <span class="muted">${counts.get(s.guid) ?? 0}</span></li>`)}</ul></li>`);
  const rows = apps.map((a) => {
    const running = d.running.get(a.guid) ?? 0;
    const desired = a.state === "STARTED" ? a.instances : 0;
    const s = a.relationships.space.data.guid;
    return html`<tr data-app="${a.name}">
      <td><a href="/console/apps/${a.guid}">${a.name}</a></td>
      <td class="muted">${orgName.get(orgOf.get(s) ?? "") ?? "?"} / ${spaceName.get(s) ?? "?"}</td>
      <td>${stateBadge(a.package_state === "FAILED" ? "FAILED" : a.state)}</td>
      <td class="num ${running < desired ? "warn" : ""}" data-instances>${running}/${a.instances}</td>
      <td class="num">${megabytes(a.memory_in_mb)}</td>
      <td>${(a.routes ?? []).map((r) => html`<div>${r}</div>`)}</td>
      <td class="muted">${ago(d.lastPush.get(a.guid))}</td>
    </tr>`;
  });
  return html`<div class="split">
  <aside class="card"><h2>Orgs and spaces</h2><ul class="tree"><li><a href="/console/" class="${d.space ? "" : "current"}">All spaces</a> <span class="muted">${d.apps.length}</span></li>${tree}</ul></aside>
  <section class="card grow">
    <h1>Apps ${d.space ? html`<span class="muted">in ${spaceName.get(d.space) ?? "?"}</span>` : null}</h1>
    ${apps.length === 0 ? html`<p class="muted">No apps here yet. Push one: <code>skiff push path/to/app</code></p>` : html`
    <table class="list" id="apps"><thead><tr><th>Name</th><th>Org / space</th><th>State</th><th class="num">Instances</th><th class="num">Memory</th><th>Routes</th><th>Last push</th></tr></thead>
    <tbody>${rows}</tbody></table>`}
  </section>
</div>`;
}
