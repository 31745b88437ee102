// Where a request's CPU time goes: workerd's inspector (Chrome DevTools protocol) profiles
// the worker while wrk loads one URL; prints the functions with the most self time.
// Usage: node bench/profile.mjs INSPECTOR_PORT URL SECONDS [AUTHORIZATION] [OUT.cpuprofile]
// (wrangler's inspector proxy takes clients that say they are Cloudflare's DevTools).
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";

const [port, url, seconds, auth, out] = process.argv.slice(2);
if (typeof WebSocket === "undefined") {
  console.error("bench/profile.mjs needs a Node with WebSocket (22+): bench/profile runs wrangler's own");
  process.exit(2);
}
const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
  headers: { Origin: "https://devtools.devprod.cloudflare.dev" },
});
await new Promise((resolve) => ws.addEventListener("open", resolve, { once: true }));
let next = 1;
const pending = new Map();
ws.addEventListener("message", (e) => {
  const msg = JSON.parse(e.data);
  // (Only answers: an inspector may echo a request it does not handle.)
  if ("result" in msg || "error" in msg) pending.get(msg.id)?.(msg.result);
});
// A method the inspector does not answer fails the run instead of hanging it (2026-12-07:
// workerd's inspector behind this wrangler answered Runtime.enable but not Profiler.enable).
const call = (method, params = {}) =>
  new Promise((resolve, reject) => {
    const id = next++;
    pending.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
    setTimeout(() => reject(new Error(`the inspector did not answer ${method}`)), 10_000).unref();
  });

await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: 100 });
await call("Profiler.start");
const args = ["-t2", "-c8", `-d${seconds}s`, ...(auth ? ["-H", `Authorization: ${auth}`] : []), url];
await new Promise((resolve) => spawn("wrk", args, { stdio: "ignore" }).on("exit", resolve));
const { profile } = await call("Profiler.stop");
ws.close();
if (out) writeFileSync(out, JSON.stringify(profile));

// Self time per function (samples are evenly spaced).
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
for (const id of profile.samples) {
  const f = byId.get(id).callFrame;
  const name = `${f.functionName || "(anonymous)"} ${f.url ? f.url.split("/").pop() : ""}`.trim();
  self.set(name, (self.get(name) ?? 0) + 1);
}
const total = profile.samples.length;
const idle = ["(idle)", "(program)", "(garbage collector)"].reduce((s, k) => s + (self.get(k) ?? 0), 0);
console.log(`samples: ${total}, busy ${(100 * (1 - (self.get("(idle)") ?? 0) / total)).toFixed(1)}%`);
console.log("| self % of busy | function |\n|---:|---|");
const busy = total - (self.get("(idle)") ?? 0);
for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
  if (name === "(idle)") continue;
  console.log(`| ${((100 * n) / busy).toFixed(1)} | ${name} |`);
}
