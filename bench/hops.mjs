// bench/scale's hop count (issue 27): the hot routes timed against an API whose D1 round trips
// and Durable Object calls each wait a simulated network delay (BENCH_HOP_MS_D1 / _DO in the
// bench build, .ci/entry.mjs). Run once per scenario; then --report prints, per route, the
// median time in each scenario and the sequential hops = (time with the delay − without) / delay.
// Usage: node bench/hops.mjs API_BASE API_KEY SCENARIO RESULTS_JSON
//        node bench/hops.mjs --report RESULTS_JSON HOP_MS
import { readFileSync, writeFileSync } from "node:fs";

const ROUNDS = Number(process.env.HOP_ROUNDS ?? 15);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (process.argv[2] === "--report") {
  const [file, hopArg] = process.argv.slice(3);
  const all = JSON.parse(readFileSync(file, "utf8"));
  const hop = Number(hopArg);
  const routes = Object.keys(all.none ?? {});
  const hops = (scenario, route) => ((all[scenario][route] - all.none[route]) / hop).toFixed(1);
  console.log(`\n| route (median of ${ROUNDS}) | no delay | D1 ${hop} ms | DO ${hop} ms | both | D1 hops | DO hops | sequential hops |`);
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of routes) {
    const ms = (s) => `${all[s][r].toFixed(1)} ms`;
    console.log(`| ${r} | ${ms("none")} | ${ms("d1")} | ${ms("do")} | ${ms("both")} | ${hops("d1", r)} | ${hops("do", r)} | ${hops("both", r)} |`);
  }
  process.exit(0);
}

const [base, key, scenario, file] = process.argv.slice(2);
const auth = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
const api = async (path, init = {}, token = key) => {
  const res = await fetch(`${base}/api/v1${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", ...init.headers },
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
};

const twin = (await api("/twins")).data[0].id;
// The twin answers from one document, so a turn's path includes its retrieval.
const login = await api("/auth/login", {
  method: "POST",
  body: JSON.stringify({ email: "demo@twinexpert.dev", password: "demo-password-2025" }),
});
const jwt = login.data.token;
if ((await api(`/twins/${twin}/knowledge`, {}, jwt)).data.length === 0) {
  await api(`/twins/${twin}/knowledge`, {
    method: "POST",
    body: JSON.stringify({ title: "Hops", content: "Hop counting needs a document about hops and latency." }),
  }, jwt);
}
const conversation = (await api("/conversations", { method: "POST", body: JSON.stringify({ twinId: twin }) })).data.id;

// Milliseconds until `done(text so far)` holds on the response body (or it ends).
async function timed(path, body, done) {
  const started = performance.now();
  const res = await fetch(`${base}${path}`, {
    method: body ? "POST" : "GET",
    headers: auth,
    body: body && JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let at = null;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    text += decoder.decode(value, { stream: true });
    if (at === null && done(text)) at = performance.now() - started;
  }
  return at ?? performance.now() - started;
}

const routes = {
  "keyed read (GET /twins/{id})": () => timed(`/api/v1/twins/${twin}`, null, () => false),
  "conversation list": () => timed("/api/v1/conversations?limit=20", null, () => false),
  "streamed turn, to the first token": () =>
    timed(`/api/v1/conversations/${conversation}/messages/stream`, { content: "Hops? [[words:3]]" }, (t) =>
      t.includes("event: delta"),
    ),
  "plain turn (model time included)": () =>
    timed(`/api/v1/conversations/${conversation}/messages`, { content: "Hops? [[words:3]]" }, () => false),
  "/chat/completions stream, to the first token": () =>
    timed(
      "/api/v1/chat/completions",
      { model: twin, stream: true, messages: [{ role: "user", content: "Hops? [[words:3]]" }] },
      (t) => /"content":"[^"]/.test(t),
    ),
};

const out = {};
for (const [name, run] of Object.entries(routes)) {
  for (let i = 0; i < 3; i++) await run(); // warm the isolate's caches, as steady traffic does
  const times = [];
  for (let i = 0; i < ROUNDS; i++) times.push(await run());
  out[name] = median(times);
}
const all = JSON.parse(readFileSync(file, "utf8"));
all[scenario] = out;
writeFileSync(file, JSON.stringify(all));
