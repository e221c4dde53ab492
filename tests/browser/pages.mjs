// Drives headless Chromium over the consumer page and the dashboard; prints one JSON object.
//
// Usage: node pages.mjs CONFIG.json  (written by tests/web/test_browser.py)
// CONFIG: { base, chromium, artifacts, token, recall: {gtin, lot, reason, capture},
//           cases: [{name, path, expect: {zh, en}}] }
// Every finding is reported, not asserted: pytest owns the assertions, so one run shows all
// problems at once. Screenshots go to CONFIG.artifacts.
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
mkdirSync(cfg.artifacts, { recursive: true });

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

async function axe(page) {
  // Evaluated through the DevTools protocol, so the page's strict CSP stays switched on.
  await page.evaluate(axeSource);
  return page.evaluate(async (tags) => {
    const r = await window.axe.run(document, { runOnly: { type: "tag", values: tags } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  }, AXE_TAGS);
}

const userDataDir = mkdtempSync(join(tmpdir(), "yima-chromium-"));
const out = { pages: [], dashboard: {}, console: [], errors: [] };
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: cfg.chromium, headless: true, args: FLAGS, locale: "zh-CN",
  viewport: { width: 390, height: 844 }, deviceScaleFactor: 1,
});
// Record what the read-aloud button would say instead of playing audio.
await context.addInitScript(() => {
  window.__spoken = [];
  if ("speechSynthesis" in window) {
    window.speechSynthesis.speak = (u) => { window.__spoken.push({ text: u.text, lang: u.lang }); };
  }
});
try {
  const page = await context.newPage();
  // Resource errors are expected here (the bad-code page is a 400, scripts are blocked once);
  // anything else logged as an error, such as a CSP violation, is a finding.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      out.console.push(m.text());
    }
  });
  page.on("pageerror", (e) => out.errors.push(String(e)));

  for (const lang of ["zh", "en"]) {
    // zh: the browser's own Accept-Language (locale zh-CN). en: an English browser's header,
    // set on the request itself (the context locale would otherwise win).
    await page.unroute("**/*");
    if (lang === "en") {
      await page.route("**/*", (route) => route.continue({
        headers: { ...route.request().headers(), "accept-language": "en-GB,en;q=0.9" } }));
    }
    for (const c of cfg.cases) {
      const resp = await page.goto(cfg.base + c.path, { waitUntil: "load" });
      const info = await page.evaluate(() => {
        const h1 = document.querySelector("h1#verdict");
        const box = document.querySelector(".verdict");
        const btn = document.getElementById("read-aloud");
        const cs = (el) => (el ? getComputedStyle(el) : null);
        return {
          htmlLang: document.documentElement.lang,
          verdict: box ? box.dataset.verdict : null,
          headline: h1 ? h1.innerText.trim() : null,
          headlinePx: h1 ? parseFloat(cs(h1).fontSize) : 0,
          bodyPx: parseFloat(cs(document.body).fontSize),
          detailPx: parseFloat(cs(document.querySelector(".verdict__detail")).fontSize),
          verdictColor: box ? cs(box).color : null,
          verdictBg: box ? cs(box).backgroundColor : null,
          readAloudVisible: !!btn && !btn.hidden && btn.offsetHeight > 0,
          readAloudHeight: btn ? btn.offsetHeight : 0,
          primaryButtons: document.querySelectorAll(".btn--primary").length,
        };
      });
      let spoken = null;
      if (info.readAloudVisible) {
        await page.click("#read-aloud");
        spoken = await page.evaluate(() => window.__spoken.slice(-1)[0] || null);
      }
      const shot = join(cfg.artifacts, `consumer-${c.name}-${lang}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      const violations = await axe(page);
      out.pages.push({ name: c.name, lang, status: resp.status(), ...info, spoken, screenshot: shot,
        axe: violations });
    }
  }

  // Without JavaScript (scripts blocked): the verdict must still be there, the button hidden.
  await page.unroute("**/*");
  await page.route("**/*.js*", (r) => r.abort());
  await page.goto(cfg.base + cfg.cases[1].path);
  out.noJs = await page.evaluate(() => ({
    headline: document.querySelector("h1#verdict")?.innerText.trim() ?? null,
    readAloudHidden: document.getElementById("read-aloud")?.hidden ?? null,
  }));
  await page.screenshot({ path: join(cfg.artifacts, "consumer-nojs.png"), fullPage: true });
  await page.unroute("**/*.js*");

  // Malformed code: a friendly page, not a trace.
  const bad = await page.goto(cfg.base + "/01/123/21/X");
  out.badCode = { status: bad.status(), headline: await page.locator("h1").innerText() };
  await page.screenshot({ path: join(cfg.artifacts, "consumer-bad-code.png"), fullPage: true });

  // Dashboard (desktop size): login, alerts with a filter, recall form.
  await page.setViewportSize({ width: 1280, height: 900 });
  const d = out.dashboard;
  await page.goto(cfg.base + "/dashboard");
  d.loginUrl = page.url();
  d.loginAxe = await axe(page);
  await page.fill("#token", cfg.token);
  await Promise.all([page.waitForURL(/\/dashboard$/), page.click("button[type=submit].btn--primary")]);
  d.afterLoginUrl = page.url();
  d.cookies = (await context.cookies()).map((k) => ({ name: k.name, httpOnly: k.httpOnly,
    sameSite: k.sameSite, valueHasToken: k.value.includes(cfg.token) }));
  await page.screenshot({ path: join(cfg.artifacts, "dashboard-overview.png"), fullPage: true });
  d.overviewAxe = await axe(page);

  await page.goto(cfg.base + "/dashboard/alerts");
  d.alertRows = await page.locator("tr[data-kind]").count();
  await page.selectOption("#f-kind", "double_dispense");
  await Promise.all([page.waitForURL(/kind=double_dispense/), page.click("form.filters button")]);
  d.filteredKinds = await page.locator("tr[data-kind]").evaluateAll((rows) =>
    [...new Set(rows.map((r) => r.dataset.kind))]);
  d.evidenceLinks = await page.locator("a[href*='/v1/log/proof/inclusion']").count();
  await page.screenshot({ path: join(cfg.artifacts, "dashboard-alerts.png"), fullPage: true });
  d.alertsAxe = await axe(page);

  await page.goto(cfg.base + "/dashboard/recall");
  await page.fill("#r-gtin", cfg.recall.gtin);
  await page.fill("#r-lot", cfg.recall.lot);
  await page.fill("#r-reason", cfg.recall.reason);
  await Promise.all([page.waitForURL(/recall\?gtin=/), page.click("form.filters button")]);
  d.command = await page.locator("#recall-command").innerText();
  await page.fill("#capture", cfg.recall.capture);
  await Promise.all([page.waitForLoadState("load"), page.click("form.stack button.btn--primary")]);
  d.recallFlash = await page.locator("#flash").innerText();
  await page.screenshot({ path: join(cfg.artifacts, "dashboard-recall.png"), fullPage: true });
  d.recallAxe = await axe(page);

  await page.goto(cfg.base + cfg.recall.lotPage);
  await page.screenshot({ path: join(cfg.artifacts, "dashboard-lot.png"), fullPage: true });
  d.lotHasNetwork = (await page.locator("svg.chart--network").count()) === 1;
  await page.goto(cfg.base + cfg.recall.itemPage);
  await page.screenshot({ path: join(cfg.artifacts, "dashboard-item.png"), fullPage: true });
  d.itemHasTimeline = (await page.locator("svg.chart--timeline").count()) === 1;

  // After the recall, the consumer page of a pack of that lot says so.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(cfg.base + cfg.recall.packPath);
  out.afterRecall = await page.locator("h1#verdict").innerText();
} catch (e) {
  out.errors.push(String(e && e.stack ? e.stack : e));
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + "\n");
