// Summarises `perf script -F period,ip,sym` (one runtime's workerd under wrk) for bench/profile:
// CPU per request, where it goes by kind of code, the functions with the most self time, and
// our Rust functions by inclusive time (a future polled counts where it runs, not where it
// was awaited). Usage: perf script … | node bench/profile-report.mjs NAME REQ_PER_SEC SECONDS
import { createInterface } from "node:readline";

const [name, rps, seconds] = process.argv.slice(2);
const samples = [];
let stack = null;
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.startsWith("\t") && line.trim()) {
    stack = [];
    samples.push({ ns: Number(line.trim()), stack });
  } else if (stack && line.trim()) {
    stack.push(line.trim().replace(/^[0-9a-f]+ /, ""));
  }
}

// The kind of code a sample's innermost frame is.
const kind = (leaf = "") => {
  if (/^JS:.*(wasm-function|::h[0-9a-f]{16}|externref shim)/.test(leaf) || /^JS:(core|alloc|serde)/.test(leaf)) return "wasm (ours)";
  if (leaf.startsWith("JS:") || leaf.startsWith("Builtins_") || leaf.startsWith("Stub:")) return "JS and V8 builtins";
  if (/sqlite/i.test(leaf)) return "SQLite";
  if (/tcmalloc|TCMalloc|memmove|memcpy|memset/.test(leaf)) return "allocation";
  if (/Scaven|cppgc|Sweep|Marking|GlobalHandles|HeapTracer/.test(leaf)) return "garbage collection, handles";
  if (/^(v8::|workerd::|kj::|capnp::|kj_rs|<)/.test(leaf)) return "runtime (workerd, V8, kj)";
  if (/^[a-z_0-9.]+$/.test(leaf)) return "kernel";
  return "other";
};

const total = samples.reduce((n, s) => n + s.ns, 0);
const requests = Number(rps) * Number(seconds);
const perRequest = (ns) => (ns / 1e6 / requests).toFixed(3);
const add = (map, key, ns) => map.set(key, (map.get(key) ?? 0) + ns);
const kinds = new Map();
const self = new Map();
const ours = new Map();
for (const { ns, stack } of samples) {
  add(kinds, kind(stack[0]), ns);
  add(self, (stack[0] ?? "?").slice(0, 110), ns);
  const seen = new Set();
  for (const frame of stack) {
    const m = /^JS:(twinexpert::\S*?)(::h[0-9a-f]{16})/.exec(frame);
    if (!m) continue;
    const fn = m[1].replace(/::\{\{closure\}\}/g, "");
    if (!seen.has(fn)) add(ours, fn, ns), seen.add(fn);
  }
}
const top = (map, n) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n);

console.log(`\n### ${name}: ${rps} req/s, ${perRequest(total)} ms of CPU per request (${samples.length} samples)\n`);
console.log("| kind of code | ms per request | share |\n|---|---:|---:|");
for (const [k, ns] of top(kinds, 20)) console.log(`| ${k} | ${perRequest(ns)} | ${((100 * ns) / total).toFixed(1)} % |`);
console.log("\n| self time: function | ms per request |\n|---|---:|");
for (const [f, ns] of top(self, 15)) console.log(`| \`${f.replace(/\|/g, "\\|")}\` | ${perRequest(ns)} |`);
if (ours.size) {
  console.log("\n| inclusive: our Rust function | ms per request |\n|---|---:|");
  for (const [f, ns] of top(ours, 15)) console.log(`| \`${f}\` | ${perRequest(ns)} |`);
}
