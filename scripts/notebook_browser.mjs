// Runs the tutorial notebook as a reader does: in Jupyter's classic Notebook, in (headless)
// Chromium, Cell > Run All, then File > Save, with screenshots of the page as it runs and when it
// is done. Used by scripts/notebook_browser.sh, which starts the notebook server; see there.
//
//   node scripts/notebook_browser.mjs URL OUT_DIR [TIMEOUT_S]
//
// Needs playwright-core (npm) and Debian's chromium (/usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [url, out, timeoutS = "1800"] = process.argv.slice(2);
if (!url || !out) {
  console.error("usage: node notebook_browser.mjs URL OUT_DIR [TIMEOUT_S]");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.goto(url);
await page.waitForFunction(() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected(), null, { timeout: 120000 });
await page.screenshot({ path: `${out}/00-opened.png` });

// Cell > Run All, through the menu as a reader would.
await page.click("#celllink");
await page.click("#run_all_cells");
const t0 = Date.now();
const pending = () => page.evaluate(() => Jupyter.notebook.get_cells().filter((c) => c.cell_type === "code" &&
  (c.input_prompt_number === "*" || c.input_prompt_number === undefined || c.input_prompt_number === null)).length);
let shot = 1;
for (;;) {
  const left = await pending();
  if (left === 0) break;
  if ((Date.now() - t0) / 1000 > Number(timeoutS)) {
    console.error(`timed out with ${left} cells not run`);
    await page.screenshot({ path: `${out}/timeout.png`, fullPage: true });
    await browser.close();
    process.exit(1);
  }
  // While a training cell runs: the cell in progress, to see the bar redrawn in place.
  const running = await page.$(".cell.code_cell.running");
  if (running && shot <= 6 && (Date.now() - t0) / 1000 > shot * 15) {
    await running.scrollIntoViewIfNeeded();
    await running.screenshot({ path: `${out}/running-${shot}.png` });
    shot++;
  }
  await page.waitForTimeout(1000);
}
console.log(`all cells ran in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

// File > Save and Checkpoint.
await page.evaluate(() => Jupyter.notebook.save_checkpoint());
await page.waitForFunction(() => !Jupyter.notebook.dirty, null, { timeout: 60000 });
const errors = await page.evaluate(() => Jupyter.notebook.get_cells().flatMap((c, i) =>
  (c.output_area ? c.output_area.outputs : []).filter((o) => o.output_type === "error" || (o.name === "stderr" && /panic|exit status/.test(o.text)))
    .map((o) => `cell ${i}: ${o.ename || ""} ${o.evalue || o.text}`)));
await page.screenshot({ path: `${out}/99-done.png`, fullPage: true });
// One screenshot per code cell with outputs, so each can be looked at whole.
const cells = await page.$$(".cell.code_cell");
for (let i = 0; i < cells.length; i++) {
  await cells[i].scrollIntoViewIfNeeded();
  await cells[i].screenshot({ path: `${out}/cell-${String(i).padStart(2, "0")}.png` });
}
await browser.close();
if (errors.length) {
  console.error(errors.join("\n"));
  process.exit(1);
}
