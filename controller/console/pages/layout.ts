// The frame around every console page: navigation, who is logged in, logout, the flash area where
// an action's outcome or refusal appears, and the CSRF token htmx sends with every change.

import { html, type Html } from "../html.ts";

export interface PageFrame {
  title: string;
  user: { username: string; admin: boolean };
  csrf: string;
  assets: { script: string; style: string };
  /** which nav entry is current */
  section: "apps" | "services" | "marketplace" | "cluster";
}

export function page(f: PageFrame, body: Html): Html {
  const nav = (id: PageFrame["section"], href: string, label: string) =>
    html`<a href="${href}" class="${f.section === id ? "current" : ""}">${label}</a>`;
  return html`<!doctype html>
<html lang="en"><head>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"historyCacheSize":0}'>
<meta name="csrf-token" content="${f.csrf}">
<title>${f.title} · skiff</title>
<link rel="stylesheet" href="${f.assets.style}">
<script type="module" src="${f.assets.script}"></script>
</head>
<body hx-headers="${JSON.stringify({ "x-csrf-token": f.csrf })}">
<header class="top">
  <a class="brand" href="/console/">skiff</a>
  <nav>${nav("apps", "/console/", "Apps")}${nav("services", "/console/services", "Services")}${nav("marketplace", "/console/marketplace", "Marketplace")}${f.user.admin ? nav("cluster", "/console/cluster", "Cluster") : null}</nav>
  <form class="who" method="post" action="/console/logout">
    <span>${f.user.username}${f.user.admin ? html` <span class="badge">admin</span>` : null}</span>
    <input type="hidden" name="_csrf" value="${f.csrf}">
    <button type="submit" class="link">Log out</button>
  </form>
</header>
<div id="flash" aria-live="polite"></div>
<main>${body}</main>
</body></html>`;
}

export function loginPage(assets: PageFrame["assets"], message?: string): Html {
  return html`<!doctype html>
<html lang="en"><head>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>Log in · skiff</title>
<link rel="stylesheet" href="${assets.style}">
<script type="module" src="${assets.script}"></script>
</head>
<body class="login">
<form id="login" class="card login-card" method="post" action="/console/login">
  <h1>skiff</h1>
  <p class="muted">Log in with your skiff user (the same as <code>skiff login</code>).</p>
  <label>User <input name="username" autocomplete="username" required autofocus></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <p id="login-error" class="error" role="alert">${message ?? ""}</p>
  <button type="submit" class="primary">Log in</button>
</form>
</body></html>`;
}

export const stateBadge = (state: string) => html`<span class="state state-${state.toLowerCase()}">${state}</span>`;

export function refusal(what: string, e: { status: number; message: string }): Html {
  return html`<p class="muted refusal" data-status="${e.status}">${what}: ${e.message}</p>`;
}
