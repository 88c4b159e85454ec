// Screenshots of the web console (issue 18) for docs/console/, and its page-load times: starts a
// one-machine cluster (Redis behind the broker), pushes examples/hello and the chatty test app, adds
// apps until there are 100, binds a service, sends traffic through the router, then opens each page in
// Debian's Chromium, writes docs/console/*.png and docs/console/page-loads.md.
//
//   bun scripts/console-screenshots.ts [--out docs/console]

import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot, startLocalCluster } from "./local-cluster.ts";
import { launchChromium, logIn } from "../tests/console/browser.ts";

const out = join(repoRoot, process.argv.includes("--out") ? process.argv[process.argv.indexOf("--out") + 1]! : "docs/console");
const APPS = 100;
const LOADS = 7;

const dir = mkdtempSync(join(tmpdir(), "skiff-console-shots-"));
const cluster = await startLocalCluster({ dataDir: dir, services: ["redis"], servicesDurable: false, extraEnv: { SKIFF_METRICS_INTERVAL_SECONDS: "2" } });
const say = (s: string) => console.log(`console-screenshots: ${s}`);
try {
  const must = async (args: string[]) => {
    const r = await cluster.cli(args);
    if (r.code !== 0) throw new Error(`skiff ${args.join(" ")} failed:\n${r.output}`);
    return r.output;
  };
  await must(["login", "-a", cluster.controllerUrl, "-u", "admin", "-p", cluster.adminPassword]);
  say("pushing examples/hello and chatty");
  await must(["push", join(repoRoot, "examples/hello")]);
  await must(["push", join(repoRoot, "tests/console/fixtures/chatty")]);
  await must(["scale", "chatty", "-i", "2"]);
  await must(["set-env", "chatty", "GREETING", "hello"]);
  await must(["set-env", "chatty", "API_KEY", "sk_live_do_not_show"]);
  await must(["create-service", "redis", "shared", "sessions"]);
  await must(["bind-service", "chatty", "sessions"]);

  const token = (await (await fetch(cluster.controllerUrl + "/v3/tokens", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: cluster.adminPassword }) })).json() as any).access_token;
  const api = async (method: string, path: string, body?: unknown) =>
    (await fetch(cluster.controllerUrl + path, { method, headers: { authorization: `bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) })).json() as any;
  const dev = (await api("GET", "/v3/spaces?names=dev")).resources[0];
  const org = dev.relationships.organization.data.guid;
  const spaces = [dev.guid, (await api("POST", "/v3/spaces", { name: "staging", organization_guid: org })).guid, (await api("POST", "/v3/spaces", { name: "prod", organization_guid: org })).guid];
  const existing = (await api("GET", "/v3/apps")).pagination.total_results as number;
  say(`adding ${APPS - existing} apps (records with routes, never pushed) for a list of ${APPS}`);
  for (let i = existing; i < APPS; i++) await api("POST", "/v3/apps", { name: `svc-${String(i).padStart(3, "0")}`, space_guid: spaces[i % 3], memory_in_mb: [128, 256, 512][i % 3] });

  // traffic for the charts: ~25 requests/s for 30 s, one in ten failing
  say("sending traffic through the router for 30 s");
  const host = `chatty.${cluster.domain}`;
  const until = Date.now() + 30_000;
  let n = 0;
  while (Date.now() < until) {
    await fetch(`http://127.0.0.1:${cluster.routerPort}${++n % 10 ? `/page/${n}` : "/fail"}`, { headers: { host } }).catch(() => undefined);
    await Bun.sleep(40);
  }

  // and a lighter stream while the pages are shot, so the cluster page shows live rates
  let shooting = true;
  const background = (async () => {
    while (shooting) {
      await fetch(`http://127.0.0.1:${cluster.routerPort}${++n % 10 ? `/page/${n}` : "/fail"}`, { headers: { host } }).catch(() => undefined);
      await Bun.sleep(100);
    }
  })();

  const browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
  const problems: string[] = [];
  const page = await logIn(context, cluster.controllerUrl, "admin", cluster.adminPassword);
  page.on("console", (m) => m.type() === "error" && problems.push(`${page.url()}: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`${page.url()}: ${e.message}`));
  const chatty = (await api("GET", "/v3/apps?names=chatty")).resources[0].guid;
  mkdirSync(out, { recursive: true });

  // page loads: the median of LOADS navigations (navigation start to the load event), and the server's part
  const pages: [string, string][] = [["apps (100)", "/console/"], ["one app", `/console/apps/${chatty}`], ["services", "/console/services"], ["marketplace", "/console/marketplace"], ["cluster", "/console/cluster"]];
  const rows: string[] = [];
  for (const [name, path] of pages) {
    const loads: number[] = [], server: number[] = [];
    for (let i = 0; i < LOADS; i++) {
      await page.goto(cluster.controllerUrl + path, { waitUntil: "load" });
      const t = await page.evaluate(() => {
        const n = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
        return { load: n.loadEventEnd - n.startTime, server: n.responseStart - n.requestStart };
      });
      if (i > 0) loads.push(t.load), server.push(t.server); // the first warms the asset cache, as any visit after the first
    }
    const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!;
    rows.push(`| ${name} | ${med(loads).toFixed(0)} ms | ${Math.max(...loads).toFixed(0)} ms | ${med(server).toFixed(0)} ms |`);
    say(`${name}: load ${med(loads).toFixed(0)} ms (max ${Math.max(...loads).toFixed(0)}), server ${med(server).toFixed(0)} ms`);
  }
  writeFileSync(join(out, "page-loads.md"), [
    "# Console page loads",
    "",
    `Made by \`bun scripts/console-screenshots.ts\` on ${new Date().toISOString().slice(0, 10)}: a one-machine cluster on this 2-core machine, ${APPS} apps,`,
    `Debian's Chromium headless; the median of ${LOADS - 1} loads after a first that fills the asset cache (navigation start to the load event;`,
    "\"server\" is request sent to first byte). The instances panel, charts and log tail load after the page, by htmx and the page script.",
    "",
    "| page | load (median) | load (worst) | server |",
    "| --- | --- | --- | --- |",
    ...rows,
    "",
  ].join("\n"));

  const shoot = async (name: string, path: string, opts: { full?: boolean; waitFor?: () => Promise<unknown> } = {}) => {
    await page.goto(cluster.controllerUrl + path, { waitUntil: "load" });
    await opts.waitFor?.();
    await page.screenshot({ path: join(out, `${name}.png`), fullPage: opts.full ?? false });
    say(`wrote ${name}.png`);
  };
  await shoot("apps", "/console/");
  await shoot("app", `/console/apps/${chatty}`, {
    full: true,
    waitFor: async () => {
      await page.locator('#instances table[data-running="2"]').waitFor({ timeout: 30_000 });
      await page.waitForFunction(() => ["requests", "cpu", "memory"].every((c) => Number(document.querySelector<HTMLElement>(`figure[data-chart="${c}"]`)?.dataset.points ?? 0) >= 2), undefined, { timeout: 30_000 });
      for (let i = 0; i < 5; i++) await fetch(`http://127.0.0.1:${cluster.routerPort}/checkout/${i}`, { headers: { host } });
      await page.locator("#log-lines .l", { hasText: "/checkout/4" }).first().waitFor({ timeout: 15_000 });
      await Bun.sleep(500);
    },
  });
  await shoot("cluster", "/console/cluster", { full: true, waitFor: () => page.waitForFunction(() => Number(document.querySelector<HTMLElement>('figure[data-chart="cluster-requests"]')?.dataset.points ?? 0) >= 2, undefined, { timeout: 30_000 }) });
  await shoot("services", "/console/services");
  await shoot("marketplace", "/console/marketplace");
  const login = await browser.newContext({ viewport: { width: 1360, height: 700 } });
  const lp = await login.newPage();
  await lp.goto(cluster.controllerUrl + "/console/login");
  await lp.screenshot({ path: join(out, "login.png") });
  say("wrote login.png");
  await browser.close();
  shooting = false;
  await background;
  // the cluster set umask 077 for its state; these are documentation
  chmodSync(out, 0o755);
  for (const f of readdirSync(out)) chmodSync(join(out, f), 0o644);
  if (problems.length) {
    console.error(`console-screenshots: the browser reported errors:\n${problems.join("\n")}`);
    process.exitCode = 1;
  }
} finally {
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
}

