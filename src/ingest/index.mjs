// The ingest worker (wrangler.toml says why it is JavaScript). Two entry points:
// - fetch, from the API only (service binding, after its owner check): accept an upload or a
//   URL, keep the original, record the document, queue the work — answer 202 at once;
// - queue: fetch or read the original, extract its text, hand the blocks to the twin's object.
// Nothing here logs a document's text, a URL's query or a file's name.
import { IngestError, MAX_FILE_BYTES, extract, sniff } from "./extract.mjs";
import { allowList, refuse } from "./guard.mjs";

const MAX_PAGE_BYTES = 5 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 10_000;
const MAX_REDIRECTS = 5;
// A body past this is not read at all (the file inside may be at most MAX_FILE_BYTES).
const MAX_UPLOAD_BYTES = 40 * 1024 * 1024;
const TITLE_MAX = 200;
// wrangler.toml: where the queue puts a job after its last retry.
const DEAD_LETTERS = "twinexpert-ingest-dead";

const json = (status, body) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
const invalid = (field, message) => json(400, { field, message });

function twin(env, twinId) {
  return env.TWIN_KNOWLEDGE.get(env.TWIN_KNOWLEDGE.idFromName(`twin:${twinId}`));
}

/** One op of the twin's object (src/knowledge/protocol.rs), its answer parsed. */
async function op(env, twinId, body) {
  return JSON.parse(await twin(env, twinId).call(JSON.stringify({ twinId, op: body })));
}

const originalKey = (twinId, documentId) => `${twinId}/${documentId}`;

function title(value, fallback) {
  const t = typeof value === "string" ? value.trim() : "";
  if (!t) return { title: fallback.slice(0, TITLE_MAX) };
  if ([...t].length > TITLE_MAX) return { error: `must be at most ${TITLE_MAX} characters` };
  return { title: t };
}

function sourceUrl(value) {
  if (value == null || value === "") return { url: null };
  if (typeof value !== "string" || !/^https?:\/\/[^\s]+$/i.test(value) || value.length > 2048) {
    return { error: "must be an http(s) URL" };
  }
  return { url: value };
}

/** POST /documents: a multipart upload or `{url}`; POST /refresh: an imported page again. */
async function accept(request, env) {
  const h = (name) => request.headers.get(name) ?? "";
  const at = { twinId: h("x-twin-id"), documentId: h("x-document-id") };
  const allow = h("x-allow-http-hosts");
  const job = { ...at, charsLeft: Number(h("x-chars-left")), allow };
  const path = new URL(request.url).pathname;

  if (path === "/refresh") {
    const answer = await op(env, at.twinId, { refresh: { documentId: at.documentId } });
    if (answer === null) return json(404, { message: "Document not found" });
    if (answer.refused) return json(409, { message: answer.refused });
    // What the page holds now is given back before it is counted again.
    const refresh = { ...job, charsLeft: job.charsLeft + answer.chars, url: answer.sourceUrl, titleGiven: true };
    await enqueue(env, refresh, "refresh it again");
    return json(202, { document: answer });
  }

  const document = {
    id: at.documentId, twinId: at.twinId, createdAt: h("x-created-at"),
    status: "processing", error: null, chars: 0, chunkCount: 0, sourceUrl: null,
  };
  let original = null;
  if (h("content-type").toLowerCase().startsWith("multipart/form-data")) {
    if (Number(h("content-length")) > MAX_UPLOAD_BYTES) return invalid("file", "must be at most 10 MB");
    let form;
    try {
      form = await request.formData();
    } catch {
      return invalid("file", "must be sent as multipart/form-data with a part named file");
    }
    const file = form.get("file");
    if (!file || typeof file === "string") return invalid("file", "is required: the document, as a file part named file");
    const named = title(form.get("title"), (file.name || "Untitled").replace(/\.[a-z0-9]+$/i, "") || "Untitled");
    if (named.error) return invalid("title", named.error);
    const source = sourceUrl(form.get("sourceUrl"));
    if (source.error) return invalid("sourceUrl", source.error);
    Object.assign(document, { title: named.title, sourceUrl: source.url, kind: "file", filename: (file.name || "").slice(0, 255) || null });
    try {
      if (file.size > MAX_FILE_BYTES) {
        throw new IngestError("TOO_LARGE", `This file is ${(file.size / 1048576).toFixed(1)} MB; the most is 10 MB`);
      }
      const bytes = new Uint8Array(await file.arrayBuffer());
      document.format = sniff(bytes, file.name, file.type);
      original = { bytes, type: file.type || "application/octet-stream" };
    } catch (e) {
      if (!(e instanceof IngestError)) throw e;
      // Refused as it arrived: recorded `failed` with the reason, nothing kept or queued.
      Object.assign(document, { status: "failed", error: { code: e.code, message: e.message } });
    }
  } else {
    let body;
    try {
      body = await request.json();
    } catch {
      return invalid("url", "must be a JSON object with url");
    }
    const why = typeof body.url === "string" ? refuse(body.url, allowList(allow)) : "is required";
    if (why) return invalid("url", why);
    const named = title(body.title, body.url);
    if (named.error) return invalid("title", named.error);
    Object.assign(document, { title: named.title, sourceUrl: body.url, kind: "url" });
    job.titleGiven = typeof body.title === "string" && body.title.trim() !== "";
    job.url = body.url;
  }

  if (original) {
    await env.ORIGINALS.put(originalKey(at.twinId, at.documentId), original.bytes, {
      httpMetadata: { contentType: original.type },
      customMetadata: { format: document.format },
    });
  }
  const totals = await op(env, at.twinId, {
    add: { document, passages: [], maxDocs: Number(h("x-max-docs")) },
  });
  if (totals === null) {
    if (original) await env.ORIGINALS.delete(originalKey(at.twinId, at.documentId));
    return json(409, { message: `This twin already has its maximum of ${h("x-max-docs")} documents; delete one first` });
  }
  if (document.status === "processing") await enqueue(env, { ...job, format: document.format ?? null }, "upload it again");
  return json(202, { document, totals });
}

/** Queues `job`; if that fails, its document fails too (`retry`: what the owner can do), so
 * none is left `processing` with no job to end it. */
async function enqueue(env, job, retry) {
  try {
    await env.JOBS.send(job);
  } catch (e) {
    await fail(env, job, "INTERNAL", `It could not be queued for processing; ${retry}`);
    throw e;
  }
}

/** The page at `url`, following at most five redirects, each one checked; within 10 s and
 * 5 MB in all. */
async function fetchPage(url, allow) {
  const deadline = AbortSignal.timeout(FETCH_TIMEOUT_MS);
  let current = url;
  try {
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const why = refuse(current, allow);
      if (why) throw new IngestError("FETCH_FAILED", `The page's address ${why}`);
      const res = await fetch(current, {
        redirect: "manual",
        signal: deadline,
        headers: {
          "User-Agent": "TwinExpert-Ingest/1.0",
          Accept: "text/html,application/xhtml+xml,text/markdown,text/plain,application/pdf;q=0.9,*/*;q=0.1",
        },
      });
      const location = res.headers.get("Location");
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        current = new URL(location, current).href;
        continue;
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new IngestError("FETCH_FAILED", `The page answered HTTP ${res.status}`);
      }
      if (Number(res.headers.get("Content-Length")) > MAX_PAGE_BYTES) {
        await res.body?.cancel();
        throw new IngestError("TOO_LARGE", "The page is larger than 5 MB");
      }
      const chunks = [];
      let size = 0;
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > MAX_PAGE_BYTES) {
          await reader.cancel();
          throw new IngestError("TOO_LARGE", "The page is larger than 5 MB");
        }
        chunks.push(value);
      }
      const bytes = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) {
        bytes.set(c, at);
        at += c.byteLength;
      }
      return { bytes, type: res.headers.get("Content-Type") || "", finalUrl: current };
    }
    throw new IngestError("FETCH_FAILED", `The page redirected more than ${MAX_REDIRECTS} times`);
  } catch (e) {
    if (e instanceof IngestError) throw e;
    if (deadline.aborted) throw new IngestError("FETCH_FAILED", `The page did not answer within ${FETCH_TIMEOUT_MS / 1000} s`);
    throw new IngestError("FETCH_FAILED", `The page could not be fetched (${e?.name || "network error"})`);
  }
}

/** One queued document: extracted and handed to the twin's object, or failed with why. */
async function ingest(job, env) {
  const key = originalKey(job.twinId, job.documentId);
  let bytes;
  let format = job.format;
  if (job.url) {
    const page = await fetchPage(job.url, allowList(job.allow));
    bytes = page.bytes;
    format = sniff(bytes, new URL(page.finalUrl).pathname, page.type);
    if (format === "docx") throw new IngestError("UNSUPPORTED_TYPE", "A URL must lead to a web page, a PDF or text; upload a DOCX as a file");
    await env.ORIGINALS.put(key, bytes, { httpMetadata: { contentType: page.type }, customMetadata: { format } });
  } else {
    const object = await env.ORIGINALS.get(key);
    if (!object) return; // deleted meanwhile
    bytes = new Uint8Array(await object.arrayBuffer());
  }
  let extracted;
  try {
    extracted = await extract(bytes, format);
  } catch (e) {
    if (e instanceof IngestError) throw e;
    // The same bytes fail the same way: no retry.
    throw new IngestError("UNREADABLE", `This ${format.toUpperCase()} could not be read`);
  }
  const done = await op(env, job.twinId, {
    ingested: {
      documentId: job.documentId,
      blocks: extracted.blocks,
      pages: extracted.pages ?? null,
      title: job.titleGiven ? null : extracted.title || null,
      maxChars: Math.max(0, job.charsLeft),
    },
  });
  // Deleted while it was processed: its original goes too.
  if (done === null) await env.ORIGINALS.delete(key);
}

/** The document (`{twinId, documentId}`) is `failed` with why. */
async function fail(env, job, code, message) {
  const done = await op(env, job.twinId, { failed: { documentId: job.documentId, error: { code, message } } });
  console.log(JSON.stringify({ event: "ingest.failed", documentId: job.documentId, code }));
  return done;
}

export default {
  async fetch(request, env) {
    if (request.method !== "POST") return json(405, { message: "POST only" });
    return accept(request, env);
  },

  async queue(batch, env) {
    if (batch.queue === DEAD_LETTERS) {
      // Jobs whose every attempt ended without an answer — the invocation itself was stopped
      // (out of CPU time or memory on a pathological file): their documents fail, never stay
      // `processing`.
      for (const message of batch.messages) {
        await fail(env, message.body, "UNREADABLE", "This document could not be processed: reading it took too long or too much memory. Try a smaller or simpler file");
        message.ack();
      }
      return;
    }
    for (const message of batch.messages) {
      const job = message.body;
      try {
        await ingest(job, env);
        message.ack();
      } catch (e) {
        // A document that cannot be read fails at once; anything else (the object or R2 out
        // of reach) is tried again, and fails the document only on the last attempt.
        const last = message.attempts >= 3;
        if (!(e instanceof IngestError) && !last) {
          console.log(JSON.stringify({ event: "ingest.retry", documentId: job.documentId, attempt: message.attempts }));
          message.retry({ delaySeconds: 5 * message.attempts });
          continue;
        }
        const [code, why] = e instanceof IngestError ? [e.code, e.message] : ["INTERNAL", "Processing failed; upload it again"];
        try {
          await fail(env, job, code, why);
          message.ack();
        } catch {
          message.retry({ delaySeconds: 30 });
        }
      }
    }
  },
};
