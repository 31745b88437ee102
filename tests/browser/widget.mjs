// The <twin-chat> widget in headless Chromium, embedded by a page on another origin the way an
// app would: the page's own server mints client tokens with its API key; the browser never sees
// the key. Sends a message from the keyboard, reloads mid-reply, checks the reply finishes with
// nothing lost or doubled, runs axe-core, takes screenshots at 360 px and 1280 px.
// Usage: node widget.mjs API_BASE API_KEY TWIN_ID OUT_DIR
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import http from "node:http";
import { fileURLToPath } from "node:url";

const [api, key, twin, out] = process.argv.slice(2);
const axePath = fileURLToPath(new URL("../../node_modules/axe-core/axe.min.js", import.meta.url));

// The embedding app: its page, and its server route that mints a client token for its user.
const host = http.createServer(async (req, res) => {
  if (req.method === "POST" && req.url === "/twin-token") {
    const r = await fetch(`${api}/api/v1/client-tokens`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ twinId: twin, endUserId: "widget-user-1", expiresInSeconds: 300 }),
    });
    const body = await r.json();
    res.writeHead(r.status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(r.ok ? { token: body.data.token, expiresAt: body.data.expiresAt } : body));
    return;
  }
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  res.end(`<!doctype html><html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Gốm An — hỏi đáp</title>
<script src="${api}/widget.js" defer></script></head>
<body style="margin:0;padding:16px;font-family:sans-serif"><main><h1>Xưởng gốm An</h1>
<twin-chat twin="${twin}" token-url="/twin-token"></twin-chat></main></body></html>`);
});
await new Promise((ok) => host.listen(0, "127.0.0.1", ok));
const page_url = `http://127.0.0.1:${host.address().port}/`;
assert.notEqual(new URL(page_url).origin, new URL(api).origin, "the page is on another origin");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(page_url);
  await page.waitForSelector("twin-chat[data-ready=true]");
  assert.equal(await page.textContent("twin-chat h2"), "Hỏi chuyên gia", "Vietnamese on a Vietnamese page");

  // Keyboard only: focus the box, type, Enter.
  await page.focus("twin-chat textarea");
  await page.keyboard.type("Men gốm Bát Tràng nung thế nào? [[pace:70]]");
  await page.keyboard.press("Enter");
  const replyText = () => page.evaluate(() => {
    const texts = [...document.querySelector("twin-chat").shadowRoot.querySelectorAll(".msg.assistant .text")];
    return texts.map((t) => t.textContent);
  });
  // Mid-reply: some text shown, not finished.
  await page.waitForFunction(() => {
    const t = document.querySelector("twin-chat").shadowRoot.querySelector(".msg.assistant .text");
    return t && t.textContent.length > 40;
  });
  assert.equal(await page.$("twin-chat .msg.assistant[data-done]"), null, "still streaming at the reload");
  const before = (await replyText())[0];
  await page.reload();
  await page.waitForSelector("twin-chat[data-ready=true]");
  await page.waitForSelector("twin-chat .msg.assistant[data-done=true]", { timeout: 30_000 });
  const after = await replyText();
  assert.equal(after.length, 1, "one reply, not two");
  assert.ok(after[0].startsWith(before), "the text shown before the reload is kept");
  assert.equal((await page.$$("twin-chat .msg.user")).length, 1, "one question");

  // Exactly the stored reply: nothing lost, nothing doubled.
  const conversationId = await page.evaluate((t) => JSON.parse(sessionStorage.getItem(`twin-chat:${t}`)).conversationId, twin);
  const stored = await (await fetch(`${api}/api/v1/conversations/${conversationId}/messages`, {
    headers: { Authorization: `Bearer ${key}` },
  })).json();
  const reply = stored.data.find((m) => m.role === "assistant");
  assert.equal(reply.status, "completed");
  assert.equal(after[0], reply.content);
  assert.equal(stored.data.find((m) => m.role === "user").content.startsWith("Men gốm"), true);
  // Its sources, as the API cites them.
  assert.ok(reply.citations.length > 0);
  const sources = await page.$$eval("twin-chat .msg.assistant .meta li", (li) => li.map((l) => l.textContent));
  assert.deepEqual(sources, reply.citations.map((c) => c.title));
  // The twin's follow-up questions, as buttons; one of them sends it.
  const next = await page.$$("twin-chat .next button");
  assert.equal(next.length, reply.suggestions.length);
  assert.ok(next.length > 0);

  // Stop: a long reply is cut where it is, and kept as it was shown.
  await page.fill("twin-chat textarea", "Kể thật dài nhé [[pace:150]] [[words:80]]");
  await page.click("twin-chat button.send");
  await page.waitForFunction(() => {
    const t = [...document.querySelector("twin-chat").shadowRoot.querySelectorAll(".msg.assistant .text")];
    return t.length === 2 && t[1].textContent.length > 20;
  });
  await page.click("twin-chat button.stop");
  await page.waitForFunction(() => document.querySelector("twin-chat").shadowRoot.querySelectorAll(".msg.assistant[data-done]").length === 2);
  const stopped = (await replyText())[1];
  const after_stop = await (await fetch(`${api}/api/v1/conversations/${conversationId}/messages`, {
    headers: { Authorization: `Bearer ${key}` },
  })).json();
  const cancelled = after_stop.data.filter((m) => m.role === "assistant")[1];
  assert.equal(cancelled.status, "cancelled");
  assert.equal(stopped, cancelled.content);
  assert.ok(stopped.split(" ").length < 80, "cut short");
  assert.equal(await page.isHidden("twin-chat button.stop"), true, "the stop button goes with the reply");

  // English where the page asks for it.
  const heading = await page.evaluate(() => {
    const el = document.createElement("twin-chat");
    el.setAttribute("lang", "en");
    el.setAttribute("twin", "x");
    document.querySelector("main").append(el);
    const text = el.shadowRoot.querySelector("h2").textContent;
    el.remove();
    return text;
  });
  assert.equal(heading, "Ask the expert");

  // axe-core: no serious or critical violation (the widget's open shadow root included).
  const audit = async () => {
    await page.addScriptTag({ path: axePath });
    const result = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ["violations"] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target) }));
    });
    return result.filter((v) => v.impact === "serious" || v.impact === "critical");
  };
  assert.deepEqual(await audit(), [], "axe at 1280 px");
  await page.screenshot({ path: `${out}/widget-1280.png`, fullPage: true });

  await page.setViewportSize({ width: 360, height: 740 });
  const box = await page.evaluate(() => document.querySelector("twin-chat").shadowRoot.querySelector(".box").getBoundingClientRect().width);
  assert.ok(box <= 360 - 32 + 1, `fits 360 px (${box})`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= 360, `no horizontal scroll at 360 px (${overflow})`);
  assert.deepEqual(await audit(), [], "axe at 360 px");
  await page.screenshot({ path: `${out}/widget-360.png`, fullPage: true });

  assert.deepEqual(errors, []);
  console.log("widget ok");
} finally {
  await browser.close();
  host.close();
}
