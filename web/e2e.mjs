// End-to-end check of the page in a real browser (Debian's Chromium, headless, driven by
// playwright-core): open URL, wait for the models, give the page PHOTO through its file input,
// wait for the result, write what the page computed (window.learnresize and the probabilities it
// shows) to OUT_JSON and screenshots to SHOT_DIR. The Go test (web/web_test.go) runs it against
// learnresize serve's handler and compares the numbers with the Go model's.
//
//   node web/e2e.mjs URL PHOTO OUT_JSON SHOT_DIR
import { chromium } from "playwright-core";
import { writeFileSync } from "node:fs";

const [url, photo, outJSON, shots] = process.argv.slice(2);
if (!shots) {
  console.error("usage: node e2e.mjs URL PHOTO OUT_JSON SHOT_DIR");
  process.exit(2);
}
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
await page.goto(url);
await page.waitForSelector("body[data-ready=true]", { timeout: 60000 });
await page.screenshot({ path: `${shots}/page-loaded.png` });
await page.setInputFiles("#file", photo);
await page.waitForSelector("body[data-done='1']", { timeout: 60000 });
const result = await page.evaluate(() => ({
  ...window.learnresize,
  shown: Object.fromEntries([...document.querySelectorAll("[id^=p-]")].map((e) => [e.id.slice(2), e.textContent])),
  captions: [...document.querySelectorAll("figcaption")].map((e) => e.textContent),
  status: document.getElementById("status").textContent,
}));
result.errors = errors;
await page.screenshot({ path: `${shots}/page-result.png`, fullPage: true });
writeFileSync(outJSON, JSON.stringify(result, null, 1));
await browser.close();
