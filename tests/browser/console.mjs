// The developer console in headless Chromium, as a new user would use it: sign up, create a
// key (shown once; it works with curl), create a twin, give it documents (a Markdown file, a
// PDF, a refused file, a web page: each shown processing, then ready or failed with its
// reason), search them, ask it in the
// playground and see the citation, see the usage chart count it, rate the reply, add a
// webhook, revoke the key (curl gets 401). Every page: axe-core (no serious or critical
// violation) and screenshots at 360 px and 1280 px. The session token never reaches
// localStorage or a cookie.
// Usage: node console.mjs BASE_URL OUT_DIR
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const [base, out] = process.argv.slice(2);
const fixtures = fileURLToPath(new URL("../fixtures/knowledge", import.meta.url));
// Evaluated through the DevTools protocol: the console's CSP (script-src 'self') rightly
// refuses an injected <script>.
const axeSource = readFileSync(fileURLToPath(new URL("../../node_modules/axe-core/axe.min.js", import.meta.url)), "utf8");
const curl = (key) => execFileSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}",
  "-H", `Authorization: Bearer ${key}`, `${base}/api/v1/twins`]).toString();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && !m.text().includes("401") && errors.push(m.text()));
  const ready = () => page.waitForSelector("body[data-ready=true]");
  const go = async (hash) => {
    await page.evaluate((h) => { document.body.dataset.ready = "false"; location.hash = h; }, hash);
    await ready();
  };
  // axe and the two screenshots of the page as it is.
  const check = async (name) => {
    for (const width of [1280, 360]) {
      await page.setViewportSize({ width, height: width === 360 ? 740 : 900 });
      await page.evaluate(axeSource);
      const bad = await page.evaluate(async () => {
        const r = await window.axe.run(document, { resultTypes: ["violations"] });
        return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
      });
      assert.deepEqual(bad, [], `${name} at ${width} px`);
      const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(scroll <= width + 1, `${name}: no horizontal scroll at ${width} px (${scroll})`);
      await page.screenshot({ path: `${out}/console-${name}-${width}.png`, fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  };

  // Sign up.
  await page.goto(`${base}/console/#/signup`);
  await ready();
  await check("signup");
  const email = `console-${Date.now()}@example.com`;
  await page.fill("input[name=name]", "Console User");
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", "correct horse battery staple");
  await page.click("#auth button[type=submit]");
  await page.waitForFunction(() => location.hash === "#/keys" && document.body.dataset.ready === "true");
  // The keys page itself, not the sign-up form it replaces (both have a `name` field).
  await page.waitForSelector("#new-key", { state: "attached" });

  // A key, shown once, works with curl.
  await page.fill("input[name=name]", "curl key");
  await page.selectOption("select[name=scope]", "full_access");
  await page.click("form button[type=submit]");
  const key = (await page.waitForSelector("#key-secret")).evaluate((el) => el.textContent);
  const secret = await key;
  assert.match(secret, /^te_/);
  await page.click("#new-key button");
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, "copy puts the key on the clipboard");
  assert.equal(curl(secret), "200");
  await check("keys");

  // A twin with a document.
  await go("#/twins");
  await page.fill("input[name=name]", "Cô Mai");
  await page.fill("textarea[name=systemPrompt]", "Bạn là cô Mai, nghệ nhân làm nón lá Huế.");
  await page.click("form button[type=submit]");
  await page.waitForFunction(() => /^#\/twins\/twn_/.test(location.hash) && document.body.dataset.ready === "true");
  await page.setInputFiles("input[type=file]", {
    name: "non-la.md", mimeType: "text/markdown",
    buffer: Buffer.from("# Nón lá\n\nNón bài thơ Huế được làm từ lá cọ non, phơi sương rồi ủi phẳng."),
  });
  await page.click("#add-document button[type=submit]");
  // Uploaded files are processed off the request: the list shows each one's status until it
  // settles, without a reload.
  await page.waitForSelector("#documents tr:has-text('non-la') .state.ready", { timeout: 60_000 });
  await page.setInputFiles("input[type=file]", `${fixtures}/runner-guide.pdf`);
  await page.click("#add-document button[type=submit]");
  await page.waitForSelector("#documents tr:has-text('runner-guide') .state.ready", { timeout: 60_000 });
  assert.match(await page.textContent("#documents tr:has-text('runner-guide')"), /pdf · 3 pages/);
  await page.setInputFiles("input[type=file]", `${fixtures}/installer.pdf`);
  await page.click("#add-document button[type=submit]");
  await page.waitForSelector("#documents tr:has-text('installer') .state.failed", { timeout: 60_000 });
  assert.match(await page.textContent("#documents tr:has-text('installer')"), /Windows executable/);
  // A web page: this server's own docs page, titled by the page, with its status shown.
  await page.fill("input[name=url]", `${base}/docs/`);
  await page.click("#add-document button[type=submit]");
  await page.waitForSelector(`#documents tr:has(a[href='${base}/docs/']) .state.ready`, { timeout: 60_000 });
  await page.waitForSelector(`#documents tr:has(a[href='${base}/docs/']) button:has-text('Fetch again')`);
  // What a turn would find, with the PDF page it is on.
  await page.fill("input[name=query]", "marathon tinh bot moi gio");
  await page.click("form:has(input[name=query]) button[type=submit]");
  await page.waitForSelector("#search-results li:has-text('runner-guide › page 3')");
  await check("twin");
  await go("#/twins");
  await check("twins");

  // Ask it in the playground: the reply streams and cites the document.
  await go("#/playground");
  await page.fill("textarea[name=message]", "Nón bài thơ làm từ lá gì?");
  await page.click("form button[type=submit]");
  await page.waitForSelector("#play-chat .msg.assistant .sources:has-text('non-la')", { timeout: 30_000 });
  await check("playground");

  // The usage chart and its numbers count the turn.
  await go("#/usage");
  await page.waitForSelector("#chart canvas");
  const requests = await page.textContent("#usage-table tfoot td:nth-child(2)");
  assert.ok(Number(requests) >= 1, `requests ${requests}`);
  await check("usage");

  // The conversation's history with its citation; rate the reply.
  await go("#/conversations");
  await check("conversations");
  await page.click("main a[href^='#/conversations/conv_']");
  await ready();
  await page.waitForSelector("#history .msg.assistant .sources:has-text('non-la')");
  await page.click("#history .msg.assistant button:has-text('Helpful') >> nth=0");
  await page.waitForSelector("#history .msg.assistant button[aria-pressed=true]:has-text('Helpful')");
  await check("conversation");

  // A webhook endpoint: its secret shown once.
  await go("#/webhooks");
  await page.fill("input[name=url]", "https://example.com/hooks/twinexpert");
  await page.click("form button[type=submit]");
  const hookSecret = await page.textContent(".secret code");
  assert.match(hookSecret, /^whsec_/);
  await page.waitForSelector("td:has-text('https://example.com/hooks/twinexpert')");
  await check("webhooks");

  // Revoke the key: curl gets 401.
  await go("#/keys");
  await page.click("tr:has-text('curl key') button.danger");
  await page.waitForSelector("tr:has-text('curl key') >> text=Revoked");
  assert.equal(curl(secret), "401");

  // Vietnamese too.
  await page.click(".lang button[data-lang=vi]");
  await ready();
  assert.equal(await page.textContent("nav a[href='#/usage']"), "Sử dụng");

  // The session token: in this tab's sessionStorage only.
  const storage = await page.evaluate(() => ({ local: localStorage.length, cookie: document.cookie, session: sessionStorage.getItem("twinexpert.session") }));
  assert.equal(storage.local, 0, "nothing in localStorage");
  assert.equal(storage.cookie, "", "no cookie");
  assert.ok(storage.session && storage.session.split(".").length === 3);
  assert.deepEqual((await context.cookies()).length, 0);
  assert.deepEqual(errors, []);
  console.log("console ok");
} catch (e) {
  // What the page showed when it failed.
  for (const p of browser.contexts().flatMap((c) => c.pages())) {
    console.log(p.url(), await p.evaluate(() => document.body.innerText).catch(() => ""));
    await p.screenshot({ path: `${out}/console-failure.png`, fullPage: true }).catch(() => {});
  }
  throw e;
} finally {
  await browser.close();
}
