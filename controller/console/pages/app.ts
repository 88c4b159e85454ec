// One app: its summary and the buttons that change it, its instances (a fragment htmx refreshes),
// charts, the live log tail, routes, bound services, environment (masked until asked), events and
// droplets with rollback. Every value comes from the API as the logged-in user.

import { html, type Html } from "../html.ts";
import { ApiRefusal } from "../console-api.ts";
import { ago, bytes, duration, megabytes, percent } from "./format.ts";
import { refusal, stateBadge } from "./layout.ts";

export interface AppData {
  app: any;
  space: { name: string; org: string };
  events: any[];
  droplets: any[] | ApiRefusal;
  bindings: { name: string; offering: string; plan: string; state: string }[] | ApiRefusal;
  env: { environment_variables: Record<string, string> } | ApiRefusal;
  lastPush?: string;
}

const LOG_SOURCES = ["APP", "STG", "RTR", "HEALTH", "CELL", "API"];

export function appBody(d: AppData): Html {
  const a = d.app;
  const g = a.guid;
  const readOnly = d.env instanceof ApiRefusal && d.env.status === 403;
  const act = (action: string, label: string, confirm: string | null, cls = "") =>
    html`<button class="${cls}" hx-post="/console/apps/${g}/${action}" hx-target="#flash" ${confirm ? html`hx-confirm="${confirm}"` : null} data-action="${action}">${label}</button>`;
  return html`
<section class="card" id="summary" hx-get="/console/apps/${g}/summary" hx-trigger="app-changed from:body" hx-swap="outerHTML">${summary(a, d)}</section>
${readOnly ? html`<p class="muted">You can read this space but not change it (the space_developer role changes apps).</p>` : html`
<section class="card actions" id="actions">
  ${act("start", "Start", null, "primary")}
  ${act("restart", "Restart", `Restart ${a.name}? Its instances are replaced one by one.`)}
  ${act("stop", "Stop", `Stop ${a.name}? Every instance stops and its routes stop answering.`)}
  <form class="scale" hx-post="/console/apps/${g}/scale" hx-target="#flash" hx-confirm="Scale ${a.name}? Instances beyond the new count are stopped; a memory change restarts every instance.">
    <label>Instances <input type="number" name="instances" min="0" max="1000" value="${a.instances}" required></label>
    <label>Memory (MB) <input type="number" name="memory_in_mb" min="16" max="65536" value="${a.memory_in_mb}" required></label>
    <button type="submit" data-action="scale">Scale</button>
  </form>
  ${act("delete", "Delete", `Delete ${a.name} for good? Its instances stop, its bindings are removed and its droplets are lost.`, "danger")}
</section>`}
<section class="card">
  <h2>Instances</h2>
  <div id="instances" hx-get="/console/apps/${g}/instances" hx-trigger="load, every 5s, app-changed from:body" hx-swap="innerHTML"><p class="muted">Asking the agents…</p></div>
</section>
<section class="card">
  <h2>Metrics <span class="muted small" id="metrics-note"></span></h2>
  <div class="charts" id="charts" data-metrics="/console/api/v3/apps/${g}/metrics" data-memory-mb="${a.memory_in_mb}">
    <figure data-chart="requests"><figcaption>Requests/s and 5xx/s (routers)</figcaption></figure>
    <figure data-chart="latency"><figcaption>Latency p50 / p99, ms</figcaption></figure>
    <figure data-chart="cpu"><figcaption>CPU % per instance</figcaption></figure>
    <figure data-chart="memory"><figcaption>Memory per instance, MiB (quota ${a.memory_in_mb})</figcaption></figure>
  </div>
</section>
<section class="card" id="logs" data-stream="/console/api/v3/apps/${g}/logs/stream" data-app="${a.name}">
  <h2>Logs <span class="muted small" id="log-status"></span></h2>
  <div class="log-controls">
    ${LOG_SOURCES.map((s) => html`<label><input type="checkbox" name="source" value="${s}" checked> ${s}</label>`)}
    <button type="button" id="log-pause">Pause</button>
    <button type="button" id="log-clear">Clear</button>
  </div>
  <div class="log-lines" id="log-lines" role="log"></div>
</section>
<div class="split">
  <section class="card grow"><h2>Routes</h2>${(a.routes ?? []).length ? html`<ul class="plain">${a.routes.map((r: string) => html`<li><code>${r}</code></li>`)}</ul>` : html`<p class="muted">No routes.</p>`}</section>
  <section class="card grow"><h2>Bound services</h2>${bindings(d.bindings)}</section>
</div>
<section class="card" id="env">${envPanel(g, d.env, false)}</section>
<div class="split">
  <section class="card grow"><h2>Events</h2>${events(d.events)}</section>
  <section class="card grow"><h2>Droplets</h2>${droplets(g, d.droplets, readOnly)}</section>
</div>`;
}

export function summary(a: any, d: Pick<AppData, "space" | "lastPush">): Html {
  return html`<div class="title-row"><h1>${a.name}</h1>${stateBadge(a.package_state === "FAILED" ? "FAILED" : a.state)}<span class="muted">${d.space.org} / ${d.space.name}</span></div>
  <dl class="facts">
    <div><dt>Instances</dt><dd data-desired>${a.instances}</dd></div>
    <div><dt>Memory</dt><dd>${megabytes(a.memory_in_mb)}</dd></div>
    <div><dt>Disk</dt><dd>${megabytes(a.disk_in_mb)}</dd></div>
    <div><dt>Package</dt><dd>${a.package_state}</dd></div>
    <div><dt>Buildpack</dt><dd>${a.buildpack ?? "detected"}</dd></div>
    <div><dt>Health check</dt><dd>${a.health_check?.type}${a.health_check?.data?.endpoint ? ` ${a.health_check.data.endpoint}` : ""}</dd></div>
    <div><dt>Last push</dt><dd>${ago(d.lastPush)}</dd></div>
  </dl>
  ${a.staging_error ? html`<p class="error">Staging failed: ${a.staging_error}</p>` : null}`;
}

export function instancesTable(r: { state: string; resources: any[] }): Html {
  if (r.resources.length === 0) return html`<p class="muted" data-running="0">${r.state === "STOPPED" ? "Stopped: no instances run." : "No instances reported yet."}</p>`;
  const running = r.resources.filter((i) => i.state === "RUNNING").length;
  return html`<table class="list" data-running="${running}"><thead><tr><th>#</th><th>State</th><th>Agent / host</th><th class="num">Uptime</th><th class="num">CPU</th><th>Memory</th><th>Disk</th><th>Crashes</th></tr></thead><tbody>
  ${r.resources.map((i) => {
    // an agent's stats give quotas in bytes, as Cloud Foundry's DEA did
    const memQuota = i.quotas?.mem ?? 0;
    const diskQuota = i.quotas?.disk ?? 0;
    // a process type other than web (issue 17) names itself before the index: "worker 0"
    const type = i.process_type && i.process_type !== "web" ? String(i.process_type) : undefined;
    return html`<tr data-index="${i.index}" data-state="${i.state}" data-process="${type ?? "web"}">
      <td>${type ? html`<span class="muted small">${type}</span> ` : null}${i.index}</td><td>${stateBadge(i.state)}</td>
      <td>${i.agent ?? "–"}<div class="muted small">${i.host ? `${i.host}:${i.port}` : ""}</div></td>
      <td class="num">${duration(i.uptime)}</td>
      <td class="num">${percent(i.usage?.cpu)}</td>
      <td>${i.usage ? html`<meter min="0" max="${memQuota}" high="${memQuota * 0.9}" value="${i.usage.mem}"></meter> <span class="small">${bytes(i.usage.mem)} / ${bytes(memQuota)}</span>` : "–"}</td>
      <td>${i.usage ? html`<meter min="0" max="${diskQuota}" high="${diskQuota * 0.9}" value="${i.usage.disk}"></meter> <span class="small">${bytes(i.usage.disk)} / ${bytes(diskQuota)}</span>` : "–"}</td>
      <td>${i.crash_count ? html`${i.crash_count}${i.details ? html`<div class="error small">${i.details}</div>` : null}${i.next_restart_at ? html`<div class="muted small">next try ${i.next_restart_at}</div>` : null}` : html`<span class="muted">0</span>`}</td>
    </tr>`;
  })}</tbody></table>`;
}

function bindings(b: AppData["bindings"]): Html {
  if (b instanceof ApiRefusal) return refusal("Not shown", b);
  if (b.length === 0) return html`<p class="muted">None. <code>skiff bind-service APP SERVICE</code> binds one.</p>`;
  return html`<table class="list"><thead><tr><th>Service</th><th>Offering / plan</th><th>Binding</th></tr></thead><tbody>${b.map((x) => html`<tr><td>${x.name}</td><td>${x.offering} / ${x.plan}</td><td>${x.state}</td></tr>`)}</tbody></table>`;
}

export function envPanel(guid: string, env: AppData["env"], revealed: boolean): Html {
  const head = html`<h2>Environment</h2>`;
  if (env instanceof ApiRefusal) return html`${head}${refusal("Only space developers see the environment", env)}`;
  const vars = Object.entries(env.environment_variables).sort(([a], [b]) => a.localeCompare(b));
  if (vars.length === 0) return html`${head}<p class="muted">No variables set. <code>skiff set-env APP NAME VALUE</code> sets one.</p>`;
  return html`${head}<table class="list env"><tbody>${vars.map(([k, v]) => html`<tr><td><code>${k}</code></td><td>${revealed ? html`<code class="secret">${v}</code>` : html`<span class="masked" title="hidden">••••••••</span>`}</td></tr>`)}</tbody></table>
  <button hx-get="/console/apps/${guid}/env${revealed ? "" : "?reveal=1"}" hx-target="#env" data-action="reveal-env">${revealed ? "Hide values" : "Show values"}</button>`;
}

function events(list: any[]): Html {
  if (list.length === 0) return html`<p class="muted">No events.</p>`;
  return html`<table class="list"><tbody>${list.map((e) => html`<tr><td class="muted nowrap" title="${e.created_at}">${ago(e.created_at)}</td><td class="nowrap"><code>${e.type.replace(/^audit\./, "")}</code></td><td class="nowrap">${e.actor?.name ?? ""}</td><td class="muted small">${eventData(e.data)}</td></tr>`)}</tbody></table>`;
}

function eventData(data: Record<string, unknown> | null): string {
  if (!data) return "";
  const short = (v: unknown) => (String(v).length > 16 ? `${String(v).slice(0, 12)}…` : String(v));
  return Object.entries(data).filter(([, v]) => v !== null && v !== undefined && typeof v !== "object").map(([k, v]) => `${k}: ${short(v)}`).join(", ").slice(0, 160);
}

function droplets(guid: string, list: AppData["droplets"], readOnly: boolean): Html {
  if (list instanceof ApiRefusal) return refusal("Not shown", list);
  if (list.length === 0) return html`<p class="muted">No droplets yet.</p>`;
  return html`<table class="list"><tbody>${list.map((dr) => html`<tr><td><code title="${dr.sha256}">${String(dr.sha256).slice(0, 12)}</code></td><td class="muted">${ago(dr.created_at)}</td><td>${dr.buildpack ?? ""}</td><td>${dr.current
    ? html`<span class="badge">current</span>`
    : readOnly ? null : html`<button hx-post="/console/apps/${guid}/rollback" hx-vals="${JSON.stringify({ droplet_guid: dr.guid })}" hx-target="#flash" hx-confirm="Roll back to droplet ${String(dr.sha256).slice(0, 12)}? Instances are replaced one by one." data-action="rollback">Roll back</button>`}</td></tr>`)}</tbody></table>`;
}
