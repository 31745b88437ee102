// Drives the docs page in headless Chromium the way a visitor would.
// Usage: node docs_playground.mjs BASE_URL API_KEY TWIN_NAME CONVERSATION_ID SCREENSHOT_PATH
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const [base, key, twinName, conversation, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const docs = await page.goto(`${base}/docs/`);
  // The docs site's own headers (src/site/_headers): only its own scripts and styles, no framing.
  const csp = docs.headers()["content-security-policy"] ?? "";
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(docs.headers()["x-content-type-options"], "nosniff");
  const blocked = [];
  page.on("console", (m) => m.text().includes("Content Security Policy") && blocked.push(m.text()));
  await page.waitForSelector("body[data-ready=true]");

  const send = async () => {
    await page.click("#send");
    await page.waitForFunction(() => !document.querySelector("#status").textContent.includes("…"));
  };

  // The seed's "Thử nghiệm API" box: key 123456 on GET /twins.
  await page.fill("#api-key", "123456");
  await page.selectOption("#endpoint", "get /api/v1/twins");
  await send();
  await page.waitForFunction(() => document.querySelector("#output").textContent.includes("Invalid API key format"));
  assert.match(await page.textContent("#status"), /^401/);

  // A real key lists the twins, with the rate-limit headers visible.
  await page.fill("#api-key", key);
  await send();
  await page.waitForFunction((name) => document.querySelector("#output").textContent.includes(name), twinName);
  assert.match(await page.textContent("#status"), /^200/);
  assert.match(await page.textContent("#headers"), /x-ratelimit-remaining: \d+/);

  // Streaming: the reply text must grow while the stream is open, before `complete`.
  await page.selectOption("#endpoint", "post /api/v1/conversations/{id}/messages/stream");
  await page.fill("#params input[name=id]", conversation);
  await page.fill("#body", JSON.stringify({ content: "Hãy giới thiệu về bạn [[pace:120]] [[words:14]]" }));
  await page.click("#send");
  const samples = [];
  while (samples.length < 400) {
    const state = await page.evaluate(() => ({
      length: document.querySelector("#stream-text").textContent.length,
      complete: document.querySelector("#stream-text").dataset.complete === "true",
    }));
    samples.push(state);
    if (state.complete) break;
    await page.waitForTimeout(40);
  }
  const growing = new Set(samples.filter((s) => !s.complete && s.length > 0).map((s) => s.length));
  assert.ok(growing.size >= 3, `text should grow before complete; saw lengths ${[...growing]}`);
  assert.ok(samples.at(-1).complete, "the stream should complete");
  await page.waitForFunction(() => document.querySelector("#output").textContent.includes('"status": "completed"'));

  // A question the twin's knowledge answers: the cited source is listed under the reply.
  await page.fill("#body", JSON.stringify({ content: "Nen an gi vao bua sang?" }));
  await page.click("#send");
  await page.waitForFunction(() => document.querySelector("#stream-text").dataset.complete === "true");
  const cited = await page.textContent("#citations li");
  assert.match(cited, /^\[1\] Bữa sáng — /, cited);
  assert.equal(await page.getAttribute("#citations li a", "href"), "https://docs.example/bua-sang");
  assert.ok(!(await page.isHidden("#citations")));

  // Disconnect mid-reply, then resume from the last event id: the text completes, whole.
  const streamText = () => page.textContent("#stream-text");
  await page.fill("#body", JSON.stringify({ content: "Kể tiếp [[pace:150]] [[words:16]]" }));
  await page.click("#send");
  await page.waitForFunction(() => document.querySelector("#events").textContent.split("delta").length > 3);
  await page.click("#stream-disconnect");
  await page.waitForFunction(() => document.querySelector("#events").textContent.includes("disconnected"));
  await page.click("#stream-resume");
  await page.waitForFunction(() => document.querySelector("#stream-text").dataset.complete === "true");
  const complete = JSON.parse(await page.textContent("#output"));
  assert.equal(complete.message.content, await streamText(), "resumed text equals the stored reply");
  assert.equal(complete.message.status, "completed");

  // Cancel a running reply from the page, once a few pieces have arrived.
  await page.evaluate(() => { document.querySelector("#events").textContent = ""; });
  await page.fill("#body", JSON.stringify({ content: "Dài lắm [[pace:150]] [[words:60]]" }));
  await page.click("#send");
  await page.waitForFunction(() => document.querySelector("#events").textContent.includes("#5 delta"));
  await page.click("#stream-cancel");
  await page.waitForFunction(() => document.querySelector("#output").textContent.includes('"status": "cancelled"'));
  await page.waitForFunction(() => document.querySelector("#events").textContent.includes("complete"));
  const cancelled = JSON.parse(await page.textContent("#output"));
  const stored = cancelled.message ?? cancelled.data.message;
  assert.ok(stored.content.length > 0, "cancelled after some text");
  assert.equal(stored.content, await streamText(), "what the page received is what was stored");

  assert.deepEqual(blocked, [], "the page needs nothing the CSP forbids");

  // The language switch.
  await page.click(".lang button[data-lang=en]");
  assert.equal(await page.textContent(".hero h1"), "Put AI twins in your app");
  await page.click(".lang button[data-lang=vi]");
  assert.equal(await page.textContent(".hero h1"), "Tích hợp AI twins vào ứng dụng của bạn");

  // The playground after the streamed reply, and the top of the page (the sticky header
  // would otherwise float over the element capture).
  await page.evaluate(() => { document.querySelector("header").style.position = "static"; });
  await page.locator("#playground").screenshot({ path: screenshot });
  const top = screenshot.replace(/\.png$/, "-top.png");
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: top });

  // The API reference: Redoc from our own assets, every operation of the document rendered,
  // and no script from anywhere else.
  await Promise.all([page.waitForURL("**/docs/reference/"), page.click("#reference-link")]);
  await page.waitForSelector("body[data-ready=true]");
  const reference = await page.textContent("#redoc");
  for (const summary of ["Add a document to your twin's knowledge", "Resume (or replay) a reply's event stream after an event id",
                         "OpenAI-compatible Chat Completions"]) {
    assert.ok(reference.includes(summary), `the reference lists "${summary}"`);
  }
  assert.ok(!blocked.some((m) => m.includes("script-src")), `no script was blocked: ${blocked}`);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-reference.png") });

  console.log(`docs playground ok; screenshots: ${screenshot} ${top}`);
} finally {
  await browser.close();
}
