// Opens netpulse's dashboard in headless Chromium and checks it as a person would:
// no console errors, charts with recorded points, a new probe result shown within 2 s.
// usage: node dashboard.mjs URL SCREENSHOT.png   (prints one JSON line; exit 1 on failure)
import { chromium } from "playwright-core";

const [url, shot] = process.argv.slice(2);
const errors = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let result = { ok: false };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("requestfailed", (r) => { if (!r.url().includes("/api/events")) errors.push("request failed: " + r.url()); });
  await page.goto(url, { waitUntil: "load" });
  // Charts drawn from the recorded points.
  await page.waitForFunction(() => {
    const c = document.querySelector("canvas[data-target]");
    return c && Number(c.dataset.points) > 2;
  }, null, { timeout: 10000 });
  const points = await page.$$eval("canvas[data-target]", (cs) => cs.map((c) => [c.dataset.target, Number(c.dataset.points)]));
  // A new probe result: the sent count shown for the first target goes up within 2 s.
  const sentNow = () => page.$eval("section.target .stats", (s) => {
    const b = [...s.querySelectorAll("b")].find((x) => x.hasAttribute("data-sent"));
    return b ? Number(b.dataset.sent) : -1;
  });
  const before = await sentNow();
  const t0 = Date.now();
  await page.waitForFunction((b) => {
    const s = document.querySelector("section.target .stats");
    const x = s && [...s.querySelectorAll("b")].find((y) => y.hasAttribute("data-sent"));
    return x && Number(x.dataset.sent) > b;
  }, before, { timeout: 10000 });
  const waited = Date.now() - t0;
  const after = await sentNow();
  const ifacePoints = await page.$$eval("canvas[data-iface]", (cs) => cs.map((c) => [c.dataset.iface, Number(c.dataset.points)]));
  await page.screenshot({ path: shot, fullPage: true });
  result = { ok: errors.length === 0, errors, points, ifacePoints, before, after, waited_ms: waited };
} catch (e) {
  result = { ok: false, errors: errors.concat(String(e)) };
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
