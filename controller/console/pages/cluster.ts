// The cluster, for admins: the agents with their capacity and load, the routers with their routes and
// request rates, and the health manager acting now. From GET /v3/cluster.

import { html, type Html } from "../html.ts";
import { ago, bytes, percent } from "./format.ts";

const rate = (v: number | null | undefined) => (v === null || v === undefined ? "–" : v < 10 ? v.toFixed(2) : v.toFixed(0));
const msOf = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms`);

export function clusterBody(c: any): Html {
  const hm = c.health_manager;
  return html`
<section class="card"><h1>Cluster</h1>
  <dl class="facts">
    <div><dt>Health manager</dt><dd id="hm-leader">${hm.leader ?? "none"}</dd></div>
    <div><dt>Last pass</dt><dd>${hm.lease_expires_at ? (hm.live ? "within the last 10 s (lease held)" : html`<span class="error">lease expired ${ago(hm.lease_expires_at)}</span>`) : "–"}</dd></div>
    <div><dt>Metrics</dt><dd>every ${c.interval_seconds} s, last ${ago(c.last_collection_at)}; ${c.history.apps} app and ${c.history.instances} instance series (at most ${c.history.limits.maxApps} / ${c.history.limits.maxInstances}, ${Math.round(c.window_seconds / 60)} min)</dd></div>
  </dl>
</section>
<section class="card"><h2>Agents</h2>
  ${c.agents.length === 0 ? html`<p class="muted">No agent has advertised in the last 10 s.</p>` : html`
  <table class="list" id="agents"><thead><tr><th>Agent</th><th>Zone</th><th>Stacks</th><th class="num">Instances</th><th class="num">Apps</th><th>Memory</th><th class="num">Free disk</th><th class="num">CPU (instances)</th><th class="num">Memory used</th></tr></thead><tbody>
  ${c.agents.map((a: any) => {
    const total = a.usage.reserved_memory_mb + a.available_memory_mb;
    return html`<tr><td><strong>${a.id}</strong><div class="muted small">${a.ip}</div></td><td>${a.zone}</td><td>${a.stacks.join(", ")}</td>
      <td class="num">${a.instances}</td><td class="num">${a.apps}</td>
      <td><meter min="0" max="${total}" high="${total * 0.9}" value="${a.usage.reserved_memory_mb}"></meter> <span class="small">${Math.round(a.usage.reserved_memory_mb)} MB reserved, ${a.available_memory_mb} MB free</span></td>
      <td class="num">${a.available_disk_mb} MB</td><td class="num">${percent(a.usage.cpu)}</td><td class="num">${bytes(a.usage.mem_bytes)}</td></tr>`;
  })}</tbody></table>`}
</section>
<section class="card"><h2>Routers</h2>
  ${c.routers.scraped.length === 0 ? html`<p class="muted">No router status endpoint is known: set SKIFF_ROUTER_STATUS_URLS (and the status credentials) on the controller, or let it learn routers from router.start at SKIFF_ROUTER_STATUS_PORT.</p>` : html`
  <table class="list" id="routers"><thead><tr><th>Router</th><th>Status</th><th class="num">Routes</th><th class="num">Endpoints</th><th class="num">Requests/s</th><th class="num">5xx/s</th><th class="num">p50</th><th class="num">p99</th><th>Busiest routes (req/s)</th></tr></thead><tbody>
  ${c.routers.scraped.map((r: any) => html`<tr><td><strong>${r.id ?? r.url}</strong>${r.id ? html`<div class="muted small">${r.url}</div>` : null}</td>
    <td>${r.ok ? html`<span class="state state-running">UP</span>` : html`<span class="state state-crashed">DOWN</span><div class="error small">${r.error}</div>`}</td>
    <td class="num">${r.routes ?? "–"}</td><td class="num">${r.endpoints ?? "–"}</td><td class="num">${rate(r.rps)}</td><td class="num">${rate(r.errors_per_second)}</td>
    <td class="num">${msOf(r.p50_ms)}</td><td class="num">${msOf(r.p99_ms)}</td>
    <td>${r.top_routes.slice(0, 8).map((t: any) => html`<div class="small"><code>${t.route}</code> ${rate(t.rps)}${t.errors_per_second ? html` <span class="error">(${rate(t.errors_per_second)} 5xx)</span>` : null}</div>`)}</td></tr>`)}
  </tbody></table>`}
  ${c.routers.heard.length ? html`<p class="muted small">Heard on the bus (router.start): ${c.routers.heard.map((r: any) => `${r.id} at ${r.hosts.join(", ")}`).join("; ")}</p>` : null}
</section>
<section class="card"><h2>Requests over every router</h2>
  <div class="charts" id="charts" data-cluster="/console/api/v3/cluster"><figure data-chart="cluster-requests"><figcaption>Requests/s and 5xx/s, all routes</figcaption></figure><figure data-chart="cluster-latency"><figcaption>Latency p50 / p99, ms</figcaption></figure></div>
</section>`;
}
