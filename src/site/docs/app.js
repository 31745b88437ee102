// The docs page: quick start, a link to the API reference (/docs/reference/, Redoc over
// /api/v1/openapi.json), and a playground that sends real requests (and shows streamed
// replies as they arrive).
"use strict";

const BASE = `${location.origin}/api/v1`;

const TEXT = {
  vi: {
    "nav.quick": "Bắt đầu", "nav.playground": "Thử nghiệm API", "nav.reference": "API Reference", "nav.console": "Bảng điều khiển",
    "hero.title": "Tích hợp AI twins vào ứng dụng của bạn",
    "hero.lead": "API RESTful để liệt kê twins, mở cuộc trò chuyện, gửi tin nhắn và nhận phản hồi streaming từng phần.",
    "hero.base": "Base URL",
    "quick.title": "Bắt đầu nhanh", "quick.s1": "1. Tạo tài khoản", "quick.s2": "2. Tạo API key bằng JWT token",
    "quick.s3": "3. Gọi API đầu tiên", "quick.s4": "4. Gửi lại an toàn với Idempotency-Key",
    "quick.auth": "Gửi API key qua header <code>Authorization: Bearer YOUR_API_KEY</code> hoặc <code>X-API-Key: YOUR_API_KEY</code>. Giữ bí mật, không đặt trong code phía client.",
    "play.title": "Thử nghiệm API", "play.key": "API Key", "play.endpoint": "Endpoint", "play.body": "Body (JSON)",
    "play.send": "Gửi request", "play.status": "Trạng thái", "play.headers": "Headers", "play.result": "Kết quả",
    "play.stream": "Phản hồi (streaming)", "play.disconnect": "Ngắt kết nối", "play.resume": "Tiếp tục (Last-Event-ID)", "play.cancel": "Huỷ phản hồi", "play.sending": "Đang gửi…", "play.badjson": "Body không phải JSON hợp lệ",
    "ref.title": "API Reference", "ref.lead": "Mọi endpoint, tham số, lược đồ và mã lỗi, sinh từ tài liệu OpenAPI 3.1 tại",
    "ref.open": "Mở API Reference",
  },
  en: {
    "nav.quick": "Quick start", "nav.playground": "Try the API", "nav.reference": "API reference", "nav.console": "Console",
    "hero.title": "Put AI twins in your app",
    "hero.lead": "A RESTful API to list twins, open conversations, send messages and stream replies piece by piece.",
    "hero.base": "Base URL",
    "quick.title": "Quick start", "quick.s1": "1. Create an account", "quick.s2": "2. Create an API key with your JWT",
    "quick.s3": "3. Make your first call", "quick.s4": "4. Retry safely with Idempotency-Key",
    "quick.auth": "Send the key as <code>Authorization: Bearer YOUR_API_KEY</code> or <code>X-API-Key: YOUR_API_KEY</code>. Keep it secret; never ship it in client-side code.",
    "play.title": "Try the API", "play.key": "API key", "play.endpoint": "Endpoint", "play.body": "Body (JSON)",
    "play.send": "Send request", "play.status": "Status", "play.headers": "Headers", "play.result": "Result",
    "play.stream": "Reply (streaming)", "play.disconnect": "Disconnect", "play.resume": "Resume (Last-Event-ID)", "play.cancel": "Cancel the reply", "play.sending": "Sending…", "play.badjson": "The body is not valid JSON",
    "ref.title": "API reference", "ref.lead": "Every endpoint, parameter, schema and error code, rendered from the OpenAPI 3.1 document at",
    "ref.open": "Open the API reference",
  },
};

let lang = localStorage.getItem("te-lang") || "vi";
const t = (key) => TEXT[lang][key] ?? TEXT.en[key] ?? key;
const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
};

function applyLanguage(next) {
  lang = next;
  localStorage.setItem("te-lang", lang);
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.innerHTML = t(node.dataset.i18n);
  for (const b of document.querySelectorAll(".lang button")) b.classList.toggle("active", b.dataset.lang === lang);
}

function quickStart() {
  $("#base-url").textContent = BASE;
  $("#qs-register").textContent =
    `curl -X POST "${BASE}/auth/register" \\\n  -H "Content-Type: application/json" \\\n  -d '{"email": "you@example.com", "password": "a-long-password", "name": "You"}'\n# → data.token is your JWT (also from POST /auth/login)`;
  $("#qs-key").textContent =
    `curl -X POST "${BASE}/auth/api-keys" \\\n  -H "Authorization: Bearer YOUR_JWT_TOKEN" \\\n  -H "Content-Type: application/json" \\\n  -d '{"name": "My App", "scope": "full_access"}'\n# → data.key (te_…) is shown only once`;
  $("#qs-first").textContent =
    `curl -X GET "${BASE}/twins" \\\n  -H "Authorization: Bearer YOUR_API_KEY" \\\n  -H "Content-Type: application/json"`;
  $("#qs-retry").textContent =
    `# The same Idempotency-Key on a retry: the first answer comes back\n# (Idempotent-Replayed: true) and nothing is sent to the twin twice.\ncurl -X POST "${BASE}/conversations/CONVERSATION_ID/messages" \\\n  -H "Authorization: Bearer YOUR_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -H "Idempotency-Key: 5f0c1e9a-order-42" \\\n  -d '{"content": "Xin chào!"}'`;
}

// --- the operations of the OpenAPI document (the playground's list) ---

function operations(doc) {
  const out = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) out.push({ method, path, op });
  }
  return out;
}

// --- playground ---

const EXAMPLES = {
  register: { email: "you@example.com", password: "a-long-password", name: "You" },
  login: { email: "you@example.com", password: "a-long-password" },
  createApiKey: { name: "My App", scope: "full_access" },
  createTwin: { name: "My Twin", systemPrompt: "You are …", visibility: "private" },
  updateTwin: { headline: "…" },
  startConversationWithTwin: { title: "API Chat Session" },
  createConversation: { twinId: "twin-id", title: "API Chat Session" },
  updateConversation: { title: "Renamed" },
  sendMessage: { content: "Xin chào!" },
  streamMessage: { content: "Xin chào! Hãy giới thiệu về bạn." },
};

let spec = null;

function setupPlayground(doc) {
  spec = doc;
  const select = $("#endpoint");
  for (const { method, path, op } of operations(doc)) {
    const option = el("option", { value: `${method} ${path}` }, `${method.toUpperCase()} ${path}`);
    option.dataset.op = op.operationId;
    select.append(option);
  }
  select.value = "get /api/v1/twins";
  select.addEventListener("change", renderInputs);
  renderInputs();
  $("#play-form").addEventListener("submit", (e) => {
    e.preventDefault();
    send().catch((err) => ($("#output").textContent = String(err)));
  });
}

function currentOp() {
  const [method, path] = $("#endpoint").value.split(" ");
  return { method, path, op: spec.paths[path][method] };
}

function renderInputs() {
  const { op } = currentOp();
  const params = $("#params");
  params.replaceChildren();
  for (const p of op.parameters || []) {
    const input = el("input", { name: p.name, "data-in": p.in, placeholder: p.in === "path" ? "required" : "" });
    params.append(el("label", {}, `${p.name} (${p.in})`, input));
  }
  const hasBody = Boolean(op.requestBody);
  $("#body-label").hidden = !hasBody;
  $("#body").value = hasBody ? JSON.stringify(EXAMPLES[op.operationId] ?? {}, null, 2) : "";
}

function showHeaders(res) {
  const lines = [];
  res.headers.forEach((v, k) => lines.push(`${k}: ${v}`));
  $("#headers").textContent = lines.sort().join("\n");
}

async function send() {
  const { method, path, op } = currentOp();
  let url = path;
  const query = new URLSearchParams();
  for (const input of document.querySelectorAll("#params input")) {
    if (input.dataset.in === "path") url = url.replace(`{${input.name}}`, encodeURIComponent(input.value.trim()));
    else if (input.value.trim()) query.set(input.name, input.value.trim());
  }
  if ([...query].length) url += `?${query}`;
  const headers = {};
  const key = $("#api-key").value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  const controller = new AbortController();
  const init = { method: method.toUpperCase(), headers, signal: controller.signal };
  if (op.requestBody && $("#body").value.trim()) {
    try {
      JSON.parse($("#body").value);
    } catch {
      $("#output").textContent = t("play.badjson");
      return;
    }
    headers["Content-Type"] = "application/json";
    init.body = $("#body").value;
  }
  $("#status").textContent = t("play.sending");
  $("#output").textContent = "";
  $("#stream-box").hidden = true;
  const res = await fetch(url, init);
  $("#status").textContent = `${res.status} ${res.statusText}`;
  showHeaders(res);
  if ((res.headers.get("content-type") || "").startsWith("text/event-stream")) {
    const conv = url.match(/conversations\/([^/?]+)/);
    live = { conv: conv && conv[1], messageId: res.headers.get("X-Message-Id"), lastId: 0, controller };
    return showStream(res, false);
  }
  const text = await res.text();
  try {
    $("#output").textContent = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    $("#output").textContent = text;
  }
}

// The stream on show: its reply's id, the last event id read, and how to drop the connection.
let live = null;

async function showStream(res, resumed) {
  $("#stream-box").hidden = false;
  const out = $("#stream-text");
  const log = $("#events");
  if (!resumed) {
    out.textContent = "";
    log.textContent = "";
    delete out.dataset.complete;
    showCitations([]);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch {
      log.textContent += "— disconnected —\n";
      return;
    }
    const { value, done } = chunk;
    if (done) break;
    buf = (buf + decoder.decode(value, { stream: true })).replace(/\r\n?/g, "\n");
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = "message";
      let id = "";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const [field, ...rest] = line.split(":");
        const val = rest.join(":").replace(/^ /, "");
        if (field === "event") event = val;
        if (field === "id") id = val;
        if (field === "data") data.push(val);
      }
      if (!data.length) continue;
      const payload = JSON.parse(data.join("\n"));
      if (live && id) live.lastId = Number(id);
      log.textContent += `#${id} ${event} ${event === "delta" ? JSON.stringify(payload.content) : ""}\n`;
      if (event === "delta") out.textContent += payload.content;
      if (event === "complete" || event === "error") $("#output").textContent = JSON.stringify(payload, null, 2);
      if (event === "complete") {
        showCitations(payload.message.citations || []);
        out.dataset.complete = "true";
      }
    }
  }
}

// The twin's knowledge sources the reply cites, under it: [n], title (a link when it has a
// sourceUrl) and the quoted passage. Text nodes only: document text is never HTML.
function showCitations(citations) {
  const list = $("#citations");
  list.replaceChildren();
  list.hidden = citations.length === 0;
  for (const c of citations) {
    const item = document.createElement("li");
    item.value = c.index;
    const title = document.createElement(/^https?:\/\//.test(c.sourceUrl || "") ? "a" : "strong");
    title.textContent = c.title;
    if (title.tagName === "A") {
      title.href = c.sourceUrl;
      title.rel = "noopener noreferrer";
    }
    const quote = document.createElement("q");
    quote.textContent = c.quote;
    item.append(`[${c.index}] `, title, " — ", quote);
    list.append(item);
  }
}

function streamPath(action) {
  return `/api/v1/conversations/${encodeURIComponent(live.conv)}/messages/${encodeURIComponent(live.messageId)}/${action}`;
}

function authHeaders() {
  const key = $("#api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// A disconnect is not a cancel: the reply goes on, and "Resume" picks it up after the last id.
$("#stream-disconnect").addEventListener("click", () => live && live.controller.abort());
$("#stream-resume").addEventListener("click", async () => {
  if (!live) return;
  live.controller = new AbortController();
  const res = await fetch(streamPath("stream"), {
    headers: { ...authHeaders(), "Last-Event-ID": String(live.lastId) },
    signal: live.controller.signal,
  });
  $("#status").textContent = `${res.status} ${res.statusText}`;
  showHeaders(res);
  if (res.ok) showStream(res, true);
  else $("#output").textContent = await res.text();
});
$("#stream-cancel").addEventListener("click", async () => {
  if (!live) return;
  const res = await fetch(streamPath("cancel"), { method: "POST", headers: authHeaders() });
  $("#output").textContent = JSON.stringify(await res.json(), null, 2);
});

// --- start ---

for (const b of document.querySelectorAll(".lang button")) b.addEventListener("click", () => applyLanguage(b.dataset.lang));
applyLanguage(lang);
quickStart();
fetch("/api/v1/openapi.json")
  .then((r) => r.json())
  .then((doc) => {
    setupPlayground(doc);
    document.body.dataset.ready = "true";
  });
