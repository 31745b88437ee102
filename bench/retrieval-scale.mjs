// bench/scale's second part (SPEC §14: retrieval costs what the twin's own documents cost,
// never other twins'): time to first token of a streamed turn on a twin with DOCS documents,
// with 1, then 10, then 100 such twins loaded on the platform. Every document shares the
// question's words, so an index shared by all twins would have to rank every tenant's passages.
// Prints a Markdown table.
// Usage: node bench/retrieval-scale.mjs API_BASE [DOCS per twin, default 200] [runs, default 20]
const [base, docsArg, runsArg] = process.argv.slice(2);
const DOCS = Number(docsArg ?? 200);
const RUNS = Number(runsArg ?? 20);
const api = async (path, { token, method = "GET", body } = {}) => {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body && JSON.stringify(body),
  });
  const json = await res.json();
  if (!json.success) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json.data;
};

const email = `scale-${Date.now()}@bench.example`;
const jwt = (await api("/auth/register", {
  method: "POST",
  body: { email, password: "bench-password-1", name: "Scale" },
})).token;
const key = (await api("/auth/api-keys", { token: jwt, method: "POST", body: { name: "scale", scope: "full_access" } })).key;

// ~1,800 characters (three passages), each document a little different.
const doc = (t, d) =>
  Array.from({ length: 12 }, (_, i) =>
    `Ghi chú ${t}-${d}-${i}: bữa sáng cân bằng giữ năng lượng ổn định, người bận rộn nên chuẩn bị trước ` +
    `yến mạch, trứng luộc và trái cây theo mùa.`).join(" ");

async function pool(jobs, width) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) await jobs[next++]();
  }));
}

const twins = [];
async function grow(to) {
  while (twins.length < to) {
    const t = twins.length;
    const twin = await api("/twins", { token: jwt, method: "POST", body: { name: `Scale ${t}`, systemPrompt: "Bạn là chuyên gia dinh dưỡng." } });
    twins.push(twin.id);
    await pool(
      Array.from({ length: DOCS }, (_, d) => () =>
        api(`/twins/${twin.id}/knowledge`, { token: jwt, method: "POST", body: { title: `Bữa sáng ${t}-${d}`, content: doc(t, d) } })),
      6,
    );
  }
}

async function ttft(conversation) {
  const t0 = performance.now();
  const res = await fetch(`${base}/api/v1/conversations/${conversation}/messages/stream`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ content: "Bua sang nen an gi de giu nang luong? [[pace:20]]" }),
  });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "", first = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (first === null && text.includes("event: delta")) first = performance.now() - t0;
  }
  if (!text.includes('"citations":[{')) throw new Error("a turn cited nothing: retrieval did not run");
  return first;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const stage of [1, 10, 100]) {
  const started = performance.now();
  await grow(stage);
  const loadS = (performance.now() - started) / 1000;
  const conversation = (await api("/conversations", { token: key, method: "POST", body: { twinId: twins[0] } })).id;
  await ttft(conversation); // warm-up
  const times = [];
  for (let i = 0; i < RUNS; i++) times.push(await ttft(conversation));
  rows.push({ stage, p50: median(times), loadS });
}
console.log(`\n| twins of ${DOCS} documents loaded | documents in all | first token p50 (${RUNS} turns, model paced 20 ms) | vs 1 twin | load time |`);
console.log("|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.stage} | ${r.stage * DOCS} | ${r.p50.toFixed(1)} ms | ${(r.p50 / rows[0].p50).toFixed(2)}× | ${r.loadS.toFixed(0)} s |`);
}
