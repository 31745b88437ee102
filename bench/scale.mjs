// bench/scale's driver: streamed turns in one conversation, D1 statements counted around them
// (the bench build's GET /__bench/d1). Prints a Markdown table.
// Usage: node bench/scale.mjs API_BASE API_KEY TURNS
const [base, key, turnsArg] = process.argv.slice(2);
const turns = Number(turnsArg);
const auth = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
const api = (path, init = {}) =>
  fetch(`${base}/api/v1${path}`, { ...init, headers: { ...auth, ...init.headers } }).then((r) => r.json());
const counts = (reset) => fetch(`${base}/__bench/d1${reset ? "?reset=1" : ""}`).then((r) => r.json());

const twin = (await api("/twins")).data[0].id;
const conversation = (await api("/conversations", { method: "POST", body: JSON.stringify({ twinId: twin }) })).data.id;

async function turn(i, idempotent) {
  const headers = idempotent ? { "Idempotency-Key": `scale-${Date.now()}-${i}` } : {};
  const res = await fetch(`${base}/api/v1/conversations/${conversation}/messages/stream`, {
    method: "POST",
    headers: { ...auth, ...headers },
    body: JSON.stringify({ content: `Turn ${i} [[words:3]]` }),
  });
  if (res.status !== 200) throw new Error(`turn ${i}: ${res.status} ${await res.text()}`);
  const text = await res.text();
  if (!text.includes("event: complete")) throw new Error(`turn ${i} did not complete`);
}

// A conversation's D1 row is written by its object up to 10 s after a turn (ROW_FLUSH_MS):
// wait past that before reading the counts, so every write the turns caused is in them.
const settle = () => new Promise((r) => setTimeout(r, 12_000));
const rows = [];
for (const idempotent of [false, true]) {
  await settle();
  await counts(true);
  for (let i = 0; i < turns; i++) await turn(i, idempotent);
  await settle();
  const c = await counts(false);
  rows.push([idempotent ? "streamed turn with an Idempotency-Key" : "streamed turn", c]);
}
console.log(`\n| D1 statements per turn (${turns} turns, one conversation) | reads | writes |`);
console.log("|---|---:|---:|");
for (const [name, c] of rows) {
  console.log(`| ${name} | ${(c.reads / turns).toFixed(2)} | ${(c.writes / turns).toFixed(2)} |`);
}
