// Debian's Chromium driven by playwright-core (its own browser download cannot be reached here):
// headless, as root without the sandbox. Used by the console's browser tests and the screenshot script.

import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = process.env.SKIFF_CHROMIUM || "/usr/bin/chromium";

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run \`node scripts/setup.mjs\` (it installs Debian's chromium), or set SKIFF_CHROMIUM`);
  return chromium.launch({ executablePath: CHROMIUM, args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
}

/** Logs in through the console's form; resolves on the apps page. */
export async function logIn(context: BrowserContext, baseUrl: string, username: string, password: string): Promise<Page> {
  const page = await context.newPage();
  page.on("dialog", (d) => void d.accept()); // the console asks before it destroys: say yes
  await page.goto(baseUrl + "/");
  await page.waitForURL(/\/console\/login/);
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", password);
  await Promise.all([page.waitForURL(/\/console\/(\?.*)?$/), page.click("button[type=submit]")]);
  return page;
}
