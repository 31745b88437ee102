// Streaming latency, side by side in one run: time to first token and the gaps between
// tokens, straight from the model server vs. through the API's SSE endpoint.
// With KNOWLEDGE_CONVERSATION_ID (a twin with many documents), also the cost of retrieval: its
// time to first token vs. CONVERSATION_ID's (a twin without documents), in the same run.
// With FLOOR_TURN_URL (bench/floor's /turns/…), also the runtime's floor for a streamed turn:
// the round trips alone (count ∥ read, then the conversation's object stores the question and
// passes the model's bytes through), in the same run.
// With RUST_FLOOR_TURN_URL (bench/floor-rs's /turns/…), also that floor written in Rust with the
// API's stack: what the stack adds to the same round trips.
// With BASELINE_TURN (API base, key and conversation id, space-separated: bench/run's
// BASELINE), also the API worker built from another revision, in the same interleaved runs.
// Usage: node bench/stream.mjs API_BASE MODEL_BASE API_KEY UPSTREAM_KEY CONVERSATION_ID [runs]
//        [KNOWLEDGE_CONVERSATION_ID]
const [apiBase, modelBase, apiKey, upstreamKey, conversation, runsArg, knowledgeConversation] =
  process.argv.slice(2);
const runs = Number(runsArg ?? 30);
const question = "How should I plan my week? [[pace:20]] [[words:25]]";

// Reads an SSE body, calling onEvent(name, data) as each event completes.
async function readSse(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let name = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) onEvent(name, data);
    }
  }
}

async function measure(open, isToken) {
  const t0 = performance.now();
  const res = await open();
  const times = [];
  let firstEvent = null;
  await readSse(res, (name, data) => {
    const t = performance.now() - t0;
    firstEvent ??= t;
    if (isToken(name, data)) times.push(t);
  });
  return { firstEvent, ttft: times[0], gaps: times.slice(1).map((t, i) => t - times[i]), tokens: times.length };
}

const floorTurnUrl = process.env.FLOOR_TURN_URL;
const isModelToken = (_, data) => data !== "[DONE]" && Boolean(JSON.parse(data).choices?.[0]?.delta?.content);

const rustFloorTurnUrl = process.env.RUST_FLOOR_TURN_URL;
const floor = (url = floorTurnUrl) =>
  measure(() => fetch(url, { method: "POST", body: JSON.stringify({ content: question }) }), isModelToken);

const direct = () =>
  measure(
    () =>
      fetch(`${modelBase}/v1/chat/completions`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${upstreamKey}` },
        body: JSON.stringify({
          model: "twin-local-1",
          stream: true,
          stream_options: { include_usage: true },
          messages: [{ role: "system", content: "You are Bench." }, { role: "user", content: question }],
        }),
      }),
    isModelToken,
  );

const viaApi = (conv = conversation, base = apiBase, key = apiKey) =>
  measure(
    () =>
      fetch(`${base}/api/v1/conversations/${conv}/messages/stream`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
        body: JSON.stringify({ content: question }),
      }),
    (name) => name === "delta",
  );

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const f = (x) => x.toFixed(1);

const results = { direct: [], api: [] };
if (knowledgeConversation) results.knowledge = [];
if (floorTurnUrl) results.floor = [];
if (rustFloorTurnUrl) results.rustFloor = [];
const baseline = process.env.BASELINE_TURN?.split(" ");
if (baseline) results.baseline = [];
// Each measured request follows an untimed one to the same server: on this VM any request after
// ~1 s idle takes 10–45 ms more (curl to a plain /health: 1–3 ms back to back, 9–40 ms after
// `sleep 1`; the floor's keyed read 6.7 → 49.9 ms), and each path here waits that long while
// the others run. That wake-up is the machine's, not a worker's.
const wake = (url) => fetch(url).then((r) => r.arrayBuffer()).catch(() => {});
const warm = (url, run) => async () => {
  await wake(url);
  return run();
};
const paths = [
  ["direct", warm(`${modelBase}/health`, direct)],
  ["api", warm(`${apiBase}/api/v1/health`, () => viaApi())],
];
if (knowledgeConversation) {
  paths.push(["knowledge", warm(`${apiBase}/api/v1/health`, () => viaApi(knowledgeConversation))]);
}
if (floorTurnUrl) paths.push(["floor", warm(new URL("/", floorTurnUrl).href, () => floor())]);
if (rustFloorTurnUrl) {
  paths.push(["rustFloor", warm(new URL("/", rustFloorTurnUrl).href, () => floor(rustFloorTurnUrl))]);
}
if (baseline) {
  const [base, key, conv] = baseline;
  paths.push(["baseline", warm(`${base}/api/v1/health`, () => viaApi(conv, base, key))]);
}
for (let i = 0; i < runs; i++) {
  // Interleaved, so all see the same machine state, in an order that rotates each round: a
  // fixed order made each path always follow the same one (in one run the API's first token
  // came 11.7 ms later than the same build's on another conversation measured right after it).
  for (let j = 0; j < paths.length; j++) {
    const [name, run] = paths[(i + j) % paths.length];
    results[name].push(await run());
  }
}
const summary = {};
for (const [name, rs] of Object.entries(results)) {
  const gaps = rs.flatMap((r) => r.gaps);
  summary[name] = {
    ttft50: pct(rs.map((r) => r.ttft), 50),
    ttft95: pct(rs.map((r) => r.ttft), 95),
    first50: pct(rs.map((r) => r.firstEvent), 50),
    gap50: pct(gaps, 50),
    gapMin: Math.min(...gaps),
    gap99: pct(gaps, 99),
    tokens: rs[0].tokens,
  };
}
const d = summary.direct;
const a = summary.api;
console.log(`\n| path (${runs} runs, paced 20 ms) | first event p50 | first token p50 | p95 | token gap min / p50 / p99 | tokens |`);
console.log("|---|---:|---:|---:|---:|---:|");
const shown = [["model server directly", d], ["API SSE stream", a]];
if (summary.knowledge) shown.push(["API SSE stream, twin with 200 documents", summary.knowledge]);
if (summary.floor) shown.push(["floor: the turn's round trips alone (bench/floor)", summary.floor]);
if (summary.rustFloor) shown.push(["floor in Rust: the same round trips (bench/floor-rs)", summary.rustFloor]);
if (summary.baseline) shown.push([`API SSE stream, baseline ${process.env.BASELINE_NAME ?? ""}`.trim(), summary.baseline]);
for (const [name, s] of shown) {
  console.log(`| ${name} | ${f(s.first50)} ms | ${f(s.ttft50)} ms | ${f(s.ttft95)} ms | ${f(s.gapMin)} / ${f(s.gap50)} / ${f(s.gap99)} ms | ${s.tokens} |`);
}
console.log(`\nadded time to first token (median): ${f(a.ttft50 - d.ttft50)} ms; API first event (progress) at ${f(a.first50)} ms`);
if (summary.floor) {
  const fl = summary.floor.ttft50 - d.ttft50;
  console.log(`floor: added time to first token (median): ${f(fl)} ms; ours above the floor: ${f(a.ttft50 - d.ttft50 - fl)} ms`);
}
if (summary.rustFloor) {
  const rf = summary.rustFloor.ttft50 - d.ttft50;
  console.log(`floor in Rust: added time to first token (median): ${f(rf)} ms; ours above it: ${f(a.ttft50 - d.ttft50 - rf)} ms`);
}
if (summary.baseline) {
  console.log(`baseline: added time to first token (median): ${f(summary.baseline.ttft50 - d.ttft50)} ms (this build: ${f(a.ttft50 - d.ttft50)} ms)`);
}
if (summary.knowledge) {
  console.log(`retrieval: added time to first token, 200 documents vs none (median): ${f(summary.knowledge.ttft50 - a.ttft50)} ms`);
}
