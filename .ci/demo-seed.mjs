// Seeds the running local API through its own public endpoints: a demo user, three public
// twins, one private twin and a full_access API key. Safe to run again: it logs in instead of
// registering, skips twins whose slug exists, and reuses the saved key while it still works.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

const base = process.argv[2] ?? "http://127.0.0.1:8787";
const api = `${base}/api/v1`;
const keyFile = process.argv[3] ?? ".wrangler/demo-api-key";
const demo = { email: "demo@twinexpert.dev", password: "demo-password-2025", name: "Demo Expert" };

const twins = [
  {
    name: "Dr. Sarah Chen",
    headline: "Cardiologist · 20 years of clinical practice",
    description: "Preventive cardiology, blood pressure and heart-healthy habits, explained plainly.",
    expertise: ["cardiology", "hypertension", "preventive health"],
    language: "en",
    greeting: "Hello, I'm Dr. Chen. What would you like to know about your heart health?",
    visibility: "public",
    systemPrompt:
      "You are Dr. Sarah Chen, a board-certified cardiologist with twenty years of clinical practice. " +
      "You explain heart health in plain language, cite guidelines when relevant, and always remind people " +
      "that you cannot diagnose them and that chest pain needs emergency care.",
  },
  {
    name: "Nguyễn Thu Hà",
    headline: "Chuyên gia dinh dưỡng · Dinh dưỡng cho gia đình Việt",
    description: "Tư vấn thực đơn lành mạnh từ món ăn Việt quen thuộc, cho người bận rộn và gia đình có con nhỏ.",
    expertise: ["dinh dưỡng", "thực đơn", "sức khỏe gia đình"],
    language: "vi",
    greeting: "Xin chào! Tôi là Thu Hà. Hôm nay bạn muốn hỏi gì về bữa ăn của gia đình?",
    visibility: "public",
    systemPrompt:
      "Bạn là Nguyễn Thu Hà, chuyên gia dinh dưỡng với mười lăm năm kinh nghiệm tại Hà Nội. " +
      "Bạn luôn trả lời bằng tiếng Việt, gợi ý món ăn Việt quen thuộc, giải thích ngắn gọn và thân thiện.",
  },
  {
    name: "Marcus Webb",
    headline: "Former startup CFO · Fundraising and unit economics",
    description: "Three exits, two down rounds survived. Honest advice on runway, pricing and investor decks.",
    expertise: ["fundraising", "unit economics", "startup finance"],
    language: "en",
    greeting: "Marcus here. Tell me your runway and your burn, and we'll go from there.",
    visibility: "public",
    systemPrompt:
      "You are Marcus Webb, a former startup CFO who has raised over $200M across seed to Series C. " +
      "You are direct, numbers-first, and you always ask about runway, burn and margins before giving advice.",
  },
  {
    name: "Coach Minh (private)",
    headline: "Personal study coach · only visible to its owner",
    description: "A private twin for the demo account: it never appears to other users.",
    expertise: ["study skills", "exam preparation"],
    language: "vi",
    greeting: "Chào em, hôm nay mình ôn phần nào?",
    visibility: "private",
    systemPrompt:
      "Bạn là Thầy Minh, người hướng dẫn học tập kiên nhẫn. Bạn chia nhỏ bài học và hỏi lại để kiểm tra hiểu bài.",
  },
];

async function call(method, path, { token, body } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${api}${path}`, { method, headers, body: body && JSON.stringify(body) });
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function waitForApi() {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${api}/health`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`API did not come up at ${base}`);
}

function fail(what, res) {
  console.error(`seed: ${what} failed (${res.status}): ${JSON.stringify(res.json)}`);
  process.exit(1);
}

await waitForApi();

let login = await call("POST", "/auth/login", { body: demo });
if (login.status === 401) {
  const reg = await call("POST", "/auth/register", { body: demo });
  if (reg.status !== 201) fail("register", reg);
  login = await call("POST", "/auth/login", { body: demo });
}
if (login.status !== 200) fail("login", login);
const jwt = login.json.data.token;

for (const twin of twins) {
  const res = await call("POST", "/twins", { token: jwt, body: twin });
  if (res.status !== 201 && res.status !== 409) fail(`twin ${twin.name}`, res);
}

let key = null;
try {
  key = readFileSync(keyFile, "utf8").trim();
} catch {}
if (!key || (await call("GET", "/auth/me", { token: key })).status !== 200) {
  const res = await call("POST", "/auth/api-keys", { token: jwt, body: { name: "Demo key", scope: "full_access" } });
  if (res.status !== 201) fail("api key", res);
  key = res.json.data.key;
  mkdirSync(dirname(keyFile), { recursive: true });
  writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
}

const list = await call("GET", "/twins", { token: key });
const first = list.json.data.find((t) => t.language === "vi" && t.visibility === "public") ?? list.json.data[0];
console.log(`
TwinExpert API is running at ${base}/api/v1  (local model server: http://127.0.0.1:8788)

  demo login   ${demo.email} / ${demo.password}
  API key      ${key}   (full_access)
  twins        ${list.json.data.map((t) => `${t.name} [${t.id}]`).join(", ")}

Try it:
  curl -s "${base}/api/v1/twins" -H "Authorization: Bearer ${key}"
  curl -s -X POST "${base}/api/v1/twins/${first.id}" -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" -d '{"title": "API Chat Session"}'

Press Ctrl-C to stop.`);
