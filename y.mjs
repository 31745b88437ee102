import { readFileSync, readdirSync } from "node:fs";
import { extract, sniff } from "./src/ingest/extract.mjs";
const dir = "bench/knowledge/docs/";
for (const f of readdirSync(dir)) {
  const bytes = new Uint8Array(readFileSync(dir+f));
  try { const fmt = sniff(bytes, f, ""); const r = await extract(bytes, fmt); console.log(f, fmt, r.pages, r.blocks.length, JSON.stringify(r.blocks.map(b=>[b.page,b.section, b.text.length]).slice(0,8))); }
  catch (e) { console.log(f, "ERR", e.code, e.message); }
}
