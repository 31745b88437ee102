// Unit tests of the ingest worker's pure parts (`node --test src/ingest/extract.test.mjs`, run by .ci/test);
// the whole path, queue and objects included, is tested end to end in tests/e2e/ingest.rs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { IngestError, htmlBlocks, markdownBlocks, sniff } from "./extract.mjs";
import { allowList, refuse } from "./guard.mjs";

const bytes = (s) => new TextEncoder().encode(s);

test("the format is read from the bytes, never trusted from the name", () => {
  assert.equal(sniff(bytes("%PDF-1.7\n..."), "notes.txt", ""), "pdf");
  assert.equal(sniff(bytes("PK\u0003\u0004rest"), "cv.docx", ""), "docx");
  assert.equal(sniff(bytes("# Title"), "a.md", ""), "markdown");
  assert.equal(sniff(bytes("<!DOCTYPE html><p>x"), "", ""), "html");
  assert.equal(sniff(bytes("plain"), "", "text/html; charset=utf-8"), "html");
  assert.equal(sniff(bytes("plain words"), "", ""), "text");
  const refused = (b, name, why) =>
    assert.throws(() => sniff(b, name, ""), (e) => e instanceof IngestError && e.code === "UNSUPPORTED_TYPE" && why.test(e.message));
  refused(new Uint8Array([0x4d, 0x5a, 0x90, 0, 0xff, 0xfe]), "setup.pdf", /Windows executable.*\.pdf/);
  refused(bytes("just text"), "report.pdf", /named \.pdf but is plain text/);
  refused(bytes("PK\u0003\u0004"), "photos.zip", /ZIP archive/);
  refused(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]), "photo.jpg", /not a PDF/);
});

test("markdown keeps its text and cuts at headings outside code fences", () => {
  const md = "Intro line.\n\n# A\n\nOne.\n\n```\n# not a heading\n```\n\n## B ##\n\nTwo.\n\n# C\nThree.";
  const blocks = markdownBlocks(md);
  assert.deepEqual(blocks.map((b) => b.section), [null, "A", "A › B", "C"]);
  assert.ok(blocks[1].text.includes("# not a heading"));
  for (const b of blocks) assert.ok(md.includes(b.text));
});

test("a page loses its navigation and footer and keeps its heading paths and table rows", () => {
  const filler = "Nội dung chính của bài viết về chăm sóc cây trồng trong nhà. ".repeat(8);
  const html = `<html><head><title>T | Site</title></head><body><nav>Menu Login</nav>
    <article><h1>T</h1><p>${filler}</p><h2>Đất</h2><p>Trộn xơ dừa.</p>
    <table><tr><th>Cây</th><th>Nắng</th></tr><tr><td>Húng</td><td>4 giờ</td></tr></table>
    <h3>Chậu</h3><ul><li>Sâu 15 cm</li></ul></article><footer>© Site</footer></body></html>`;
  const { title, blocks } = htmlBlocks(html);
  assert.equal(title, "T | Site");
  const text = blocks.map((b) => b.text).join("\n");
  assert.ok(!text.includes("Menu Login") && !text.includes("© Site"), text);
  const soil = blocks.find((b) => b.section === "Đất");
  assert.ok(soil.text.startsWith("Đất\n\nTrộn xơ dừa."), soil.text);
  assert.ok(soil.text.includes("Húng | 4 giờ"), soil.text);
  assert.equal(blocks.at(-1).section, "Đất › Chậu");
});

test("imports reach public https hosts only, unless a host is allowed for local use", () => {
  const none = allowList("");
  assert.equal(refuse("https://example.com/a?b=1", none), null);
  for (const bad of ["http://example.com/", "https://localhost/", "https://10.0.0.8/", "https://192.168.1.1/",
    "https://169.254.169.254/latest", "https://[::1]/", "https://printer.local/", "https://intranet/", "ftp://example.com/",
    "https://user:pw@example.com/", "not a url"]) {
    assert.notEqual(refuse(bad, none), null, bad);
  }
  const local = allowList(" 127.0.0.1:9000 ,");
  assert.equal(refuse("http://127.0.0.1:9000/page", local), null);
  assert.notEqual(refuse("http://127.0.0.1:9001/page", local), null);
});

/** The worker's queue consumer against fakes of its bindings: the ops it sends the twin's
 * object, and what it does with each message. */
async function consume(queue, job, { original = null } = {}) {
  const { default: worker } = await import("./index.mjs");
  const ops = [];
  const env = {
    TWIN_KNOWLEDGE: {
      idFromName: (name) => name,
      get: () => ({ call: async (json) => { ops.push(JSON.parse(json)); return "{}"; } }),
    },
    ORIGINALS: { get: async () => original, put: async () => {}, delete: async () => {} },
  };
  const outcome = [];
  const message = { body: job, attempts: 1, ack: () => outcome.push("ack"), retry: () => outcome.push("retry") };
  await worker.queue({ queue, messages: [message] }, env);
  return { ops, outcome };
}

test("a job that cannot be read fails its document at once; a dead letter fails it too", async () => {
  const job = { twinId: "twn_1", documentId: "doc_1", charsLeft: 100, allow: "" };
  const page = await consume("twinexpert-ingest", { ...job, url: "https://10.0.0.1/x" });
  assert.deepEqual(page.outcome, ["ack"]);
  assert.equal(page.ops[0].op.failed.error.code, "FETCH_FAILED");
  const exe = new Uint8Array([0x4d, 0x5a, 0, 1, 0xff]);
  const file = await consume("twinexpert-ingest", { ...job, format: "pdf" }, { original: { arrayBuffer: async () => exe.buffer } });
  assert.deepEqual(file.outcome, ["ack"]);
  assert.equal(file.ops[0].op.failed.error.code, "UNREADABLE");
  const dead = await consume("twinexpert-ingest-dead", job);
  assert.deepEqual(dead.outcome, ["ack"]);
  assert.deepEqual([dead.ops[0].twinId, dead.ops[0].op.failed.documentId], ["twn_1", "doc_1"]);
  assert.match(dead.ops[0].op.failed.error.message, /too long or too much memory/);
});
