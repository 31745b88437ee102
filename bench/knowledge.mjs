// Knowledge benchmarks against a running API (bench/run calls both; so does a test).
//   node bench/knowledge.mjs quality API_BASE JWT API_KEY
//     Retrieval quality: a twin gets the corpus of bench/knowledge/corpus.json; each question is
//     asked once; a hit is a reply whose first citation is the expected document. Prints a table
//     and a last line `{"score": …, "hits": …, "questions": …}`.
//   node bench/knowledge.mjs recall API_BASE JWT
//     Retrieval over real uploads: a twin gets every file of bench/knowledge/docs (PDF, DOCX,
//     HTML pages with navigation noise, Markdown, text) as a multipart upload, each processed by
//     the ingest worker; each question of bench/knowledge/recall.json is searched
//     (POST …/knowledge/search, the passages a turn is given) and is a hit when one of the five
//     is from the expected file and holds the expected answer. Prints a table and a last line
//     `{"recallAt5": …, "hits": …, "questions": …, "documents": …, "withoutDiacritics": …}`.
//   node bench/knowledge.mjs fill API_BASE JWT API_KEY TWIN_ID COUNT
//     Gives TWIN_ID COUNT documents (each eight corpus texts, about 1.5 KB) and prints a new
//     conversation id with it: the time-to-first-token cost of retrieval in bench/stream.mjs.
import { readFileSync } from "node:fs";

const [mode, base, jwt, key, ...rest] = process.argv.slice(2);
const corpus = JSON.parse(readFileSync(new URL("knowledge/corpus.json", import.meta.url)));

async function call(method, path, token, body) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body && JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json.data;
}

async function conversationWith(twin) {
  return (await call("POST", "/conversations", key, { twinId: twin })).id;
}

if (mode === "quality") {
  const twin = await call("POST", "/twins", jwt, {
    name: `Corpus ${Date.now()}`, systemPrompt: "Bạn là chuyên gia đa lĩnh vực.", visibility: "private",
  });
  const ids = new Map();
  for (const doc of corpus.documents) {
    const d = await call("POST", `/twins/${twin.id}/knowledge`, jwt, doc);
    ids.set(d.id, doc.title);
  }
  const conversation = await conversationWith(twin.id);
  let hits = 0;
  console.log("| question | expected | cited first | hit |\n|---|---|---|---|");
  for (const { q, expect } of corpus.questions) {
    const { message } = await call("POST", `/conversations/${conversation}/messages`, key, { content: q });
    const first = message.citations[0];
    const got = first ? ids.get(first.documentId) : "(none)";
    const hit = got === expect && corpus.documents.some((d) => d.title === expect && d.content.includes(first.quote));
    hits += hit ? 1 : 0;
    console.log(`| ${q} | ${expect} | ${got} | ${hit ? "✓" : "✗"} |`);
  }
  const questions = corpus.questions.length;
  console.log(JSON.stringify({ score: hits / questions, hits, questions, documents: corpus.documents.length }));
} else if (mode === "recall") {
  const { readdirSync } = await import("node:fs");
  const spec = JSON.parse(readFileSync(new URL("knowledge/recall.json", import.meta.url)));
  const dir = new URL("knowledge/docs/", import.meta.url);
  const files = [
    ...readdirSync(dir).sort().map((f) => new URL(f, dir)),
    ...spec.extraFiles.map((f) => new URL(f, new URL("knowledge/", import.meta.url))),
  ];
  const twin = await call("POST", "/twins", jwt, {
    name: `Recall ${Date.now()}`, systemPrompt: "Bạn là chuyên gia đa lĩnh vực.", visibility: "private",
  });
  const byFile = new Map();
  const started = Date.now();
  for (const url of files) {
    const name = url.pathname.split("/").pop();
    const form = new FormData();
    form.append("file", new Blob([readFileSync(url)]), name);
    const res = await fetch(`${base}/api/v1/twins/${twin.id}/knowledge`, {
      method: "POST", headers: { Authorization: `Bearer ${jwt}` }, body: form,
    });
    const json = await res.json();
    if (res.status !== 202) throw new Error(`${name}: ${res.status} ${JSON.stringify(json)}`);
    byFile.set(name, json.data.id);
  }
  // Every upload processed (the queue takes them one at a time).
  const docs = new Map();
  for (const [name, id] of byFile) {
    for (;;) {
      const doc = await call("GET", `/twins/${twin.id}/knowledge/${id}`, jwt);
      if (doc.status === "processing") {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (doc.status !== "ready") throw new Error(`${name}: ${JSON.stringify(doc.error)}`);
      docs.set(id, doc);
      break;
    }
  }
  // Upload to the last `ready`: the queue takes one document at a time.
  const processedMs = Date.now() - started;
  const flat = (s) => s.replace(/\s+/g, " ").trim();
  let hits = 0;
  let notSubstrings = 0;
  let withoutDiacritics = 0;
  console.log("| question | file | rank | hit |\n|---|---|---:|---|");
  for (const { q, file, answer } of spec.questions) {
    const passages = await call("POST", `/twins/${twin.id}/knowledge/search`, jwt, { query: q });
    for (const p of passages) notSubstrings += docs.get(p.documentId).content.includes(p.text) ? 0 : 1;
    const rank = passages.findIndex((p) => p.documentId === byFile.get(file) && flat(p.text).includes(flat(answer)));
    hits += rank >= 0 ? 1 : 0;
    // Typed without marks, about text written with them.
    if (!/[^\x00-\x7f]/.test(q) && /[^\x00-\x7f]/.test(answer)) withoutDiacritics += 1;
    console.log(`| ${q} | ${file} | ${rank >= 0 ? rank + 1 : "–"} | ${rank >= 0 ? "✓" : "✗"} |`);
  }
  const formats = [...docs.values()].reduce((m, d) => ({ ...m, [d.format]: (m[d.format] || 0) + 1 }), {});
  const questions = spec.questions.length;
  console.log(JSON.stringify({
    recallAt5: hits / questions, hits, questions, documents: docs.size, withoutDiacritics, formats, notSubstrings, processedMs,
  }));
} else if (mode === "fill") {
  const [twin, count] = rest;
  const texts = corpus.documents.map((d) => d.content);
  const jobs = [];
  for (let i = 0; i < Number(count); i++) {
    const content = Array.from({ length: 8 }, (_, j) => texts[(i * 3 + j) % texts.length]).join("\n\n");
    jobs.push(() => call("POST", `/twins/${twin}/knowledge`, jwt, { title: `Ghi chú ${i + 1}`, content }));
  }
  // A few at a time: D1 takes one write at a time anyway.
  while (jobs.length) await Promise.all(jobs.splice(0, 8).map((j) => j()));
  console.log(await conversationWith(twin));
} else {
  console.error("usage: node bench/knowledge.mjs quality|recall|fill API_BASE JWT [API_KEY [TWIN_ID COUNT]]");
  process.exit(2);
}
