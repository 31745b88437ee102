// The developer console (docs/console.md): plain JS over the public API, on the docs site's
// origin. The session token is kept in sessionStorage (this tab only), never in localStorage
// or a cookie. Every text from the API is set with textContent, never as HTML.
(() => {
  "use strict";
  const API = "/api/v1";

  const T = {
    vi: {
      "nav.keys": "API keys", "nav.usage": "Sử dụng", "nav.twins": "Twins", "nav.playground": "Thử nghiệm",
      "nav.conversations": "Cuộc trò chuyện", "nav.webhooks": "Webhooks", signout: "Đăng xuất",
      signin: "Đăng nhập", signup: "Tạo tài khoản", email: "Email", password: "Mật khẩu", name: "Tên",
      "signin.none": "Chưa có tài khoản?", "signup.have": "Đã có tài khoản?",
      "keys.title": "API keys", "keys.create": "Tạo API key", "keys.scope": "Quyền", "keys.expires": "Hết hạn sau (ngày)",
      "keys.once": "Đây là lần duy nhất key được hiển thị. Hãy lưu lại ngay.", copy: "Sao chép", copied: "Đã sao chép",
      "keys.list": "Các key của bạn", prefix: "Tiền tố", created: "Tạo lúc", lastUsed: "Dùng lần cuối", status: "Trạng thái",
      revoke: "Thu hồi", revoked: "Đã thu hồi", active: "Đang hoạt động", "keys.limits": "Giới hạn mỗi người dùng cuối",
      "keys.mph": "Tin nhắn/giờ", "keys.tpd": "Token/ngày", save: "Lưu", saved: "Đã lưu", none: "Không có",
      "usage.title": "Sử dụng", from: "Từ ngày", to: "Đến ngày", groupBy: "Nhóm theo", show: "Xem",
      day: "Ngày", apiKey: "API key", twin: "Twin", endUser: "Người dùng cuối", requests: "Yêu cầu",
      prompt: "Token prompt", completion: "Token trả lời", total: "Tổng token", totals: "Tổng cộng",
      "twins.title": "Twins", "twins.create": "Tạo twin", persona: "Persona (system prompt)", visibility: "Hiển thị",
      model: "Model", language: "Ngôn ngữ", private: "Riêng tư", public: "Công khai", edit: "Sửa", open: "Mở",
      "knowledge.title": "Kiến thức", "knowledge.add": "Thêm tài liệu", title: "Tiêu đề", content: "Nội dung",
      file: "Hoặc tải lên tệp (PDF, DOCX, HTML, Markdown, văn bản; tối đa 10 MB)", delete: "Xóa", chars: "Ký tự", chunks: "Đoạn",
      pageUrl: "Hoặc nhập trang web (https://…)", "st.processing": "Đang xử lý", "st.ready": "Sẵn sàng", "st.failed": "Lỗi",
      refresh: "Tải lại trang", pages: "trang", "search.title": "Thử tìm kiếm trong kiến thức", query: "Câu hỏi", search: "Tìm",
      "search.none": "Không tìm thấy đoạn nào.", page: "trang", format: "Định dạng",
      "feedback.title": "Phản hồi (30 ngày)", positive: "Hữu ích", negative: "Chưa hữu ích",
      "play.title": "Thử nghiệm", message: "Tin nhắn", send: "Gửi", newConv: "Cuộc trò chuyện mới",
      sources: "Nguồn", next: "Gợi ý câu hỏi", "conv.title": "Cuộc trò chuyện", messages: "Tin nhắn",
      rate: "Đánh giá", "hooks.title": "Webhooks", "hooks.create": "Thêm endpoint", url: "URL", events: "Sự kiện",
      "hooks.once": "Secret để kiểm chữ ký, chỉ hiện lần này:", deliveries: "Lượt gửi", redeliver: "Gửi lại",
      description: "Mô tả", error: "Lỗi", default: "Mặc định", back: "Quay lại", following: "Đang theo dõi câu trả lời…",
    },
    en: {
      "nav.keys": "API keys", "nav.usage": "Usage", "nav.twins": "Twins", "nav.playground": "Playground",
      "nav.conversations": "Conversations", "nav.webhooks": "Webhooks", signout: "Sign out",
      signin: "Sign in", signup: "Create an account", email: "Email", password: "Password", name: "Name",
      "signin.none": "No account yet?", "signup.have": "Already have an account?",
      "keys.title": "API keys", "keys.create": "Create an API key", "keys.scope": "Scope", "keys.expires": "Expires in (days)",
      "keys.once": "This is the only time the key is shown. Store it now.", copy: "Copy", copied: "Copied",
      "keys.list": "Your keys", prefix: "Prefix", created: "Created", lastUsed: "Last used", status: "Status",
      revoke: "Revoke", revoked: "Revoked", active: "Active", "keys.limits": "Limits per end user",
      "keys.mph": "Messages/hour", "keys.tpd": "Tokens/day", save: "Save", saved: "Saved", none: "None",
      "usage.title": "Usage", from: "From", to: "To", groupBy: "Group by", show: "Show",
      day: "Day", apiKey: "API key", twin: "Twin", endUser: "End user", requests: "Requests",
      prompt: "Prompt tokens", completion: "Completion tokens", total: "Total tokens", totals: "Totals",
      "twins.title": "Twins", "twins.create": "Create a twin", persona: "Persona (system prompt)", visibility: "Visibility",
      model: "Model", language: "Language", private: "Private", public: "Public", edit: "Edit", open: "Open",
      "knowledge.title": "Knowledge", "knowledge.add": "Add a document", title: "Title", content: "Content",
      file: "Or upload a file (PDF, DOCX, HTML, Markdown, text; at most 10 MB)", delete: "Delete", chars: "Characters", chunks: "Passages",
      pageUrl: "Or import a web page (https://…)", "st.processing": "Processing", "st.ready": "Ready", "st.failed": "Failed",
      refresh: "Fetch again", pages: "pages", "search.title": "Try a search of the knowledge", query: "Question", search: "Search",
      "search.none": "No passage found.", page: "page", format: "Format",
      "feedback.title": "Feedback (30 days)", positive: "Helpful", negative: "Not helpful",
      "play.title": "Playground", message: "Message", send: "Send", newConv: "New conversation",
      sources: "Sources", next: "You could ask", "conv.title": "Conversations", messages: "Messages",
      rate: "Rate", "hooks.title": "Webhooks", "hooks.create": "Add an endpoint", url: "URL", events: "Events",
      "hooks.once": "Signing secret, shown only now:", deliveries: "Deliveries", redeliver: "Redeliver",
      description: "Description", error: "Error", default: "Default", back: "Back", following: "Following the reply…",
    },
  };
  const EVENTS = ["message.completed", "message.incomplete", "message.failed", "message.cancelled", "quota.reached"];

  let lang = (navigator.language || "vi").toLowerCase().startsWith("en") ? "en" : "vi";
  const t = (k) => T[lang][k] || k;
  const session = {
    get token() { return sessionStorage.getItem("twinexpert.session"); },
    set token(v) { v ? sessionStorage.setItem("twinexpert.session", v) : sessionStorage.removeItem("twinexpert.session"); },
  };
  let me = null;

  /** An element: h("button.primary", {type: "submit"}, "text", child…). */
  function h(tag, attrs, ...children) {
    const [name, ...classes] = tag.split(".");
    const el = document.createElement(name);
    if (classes.length) el.className = classes.join(" ");
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k in el && k !== "list") el[k] = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
    return el;
  }
  // A table that may scroll sideways on a small screen: reachable from the keyboard.
  const scroller = (label, attrs, ...children) =>
    h("div.table", { tabIndex: 0, role: "region", "aria-label": label, ...attrs }, ...children);
  const field = (label, input, wide) => h(wide ? "label.wide" : "label", {}, label, input);
  const view = () => document.getElementById("view");
  function toast(text) {
    const el = document.getElementById("toast");
    el.textContent = text;
    el.classList.add("show");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => el.classList.remove("show"), 2500);
  }

  async function call(method, path, body) {
    const headers = {};
    if (session.token) headers.Authorization = `Bearer ${session.token}`;
    // FormData sets its own multipart Content-Type (with the boundary).
    const form = body instanceof FormData;
    if (body !== undefined && !form) headers["Content-Type"] = "application/json";
    const r = await fetch(API + path, { method, headers, body: body === undefined || form ? body : JSON.stringify(body) });
    const json = await r.json().catch(() => ({}));
    if (r.status === 401 && session.token && !path.startsWith("/auth/login")) {
      session.token = null;
      location.hash = "#/signin";
    }
    if (!r.ok) throw Object.assign(new Error(json.message || `HTTP ${r.status}`), { status: r.status, body: json });
    return json;
  }
  const fail = (e) => toast(`${t("error")}: ${e.message}`);

  // ---- pages -------------------------------------------------------------------------------

  function page(title, ...sections) {
    document.title = `${title} — TwinExpert Console`;
    view().replaceChildren(h("h1", {}, title), ...sections);
  }

  function signin(signup) {
    const email = h("input", { type: "email", name: "email", autocomplete: "email", required: true });
    const password = h("input", { type: "password", name: "password", autocomplete: signup ? "new-password" : "current-password", required: true, minLength: signup ? 10 : undefined });
    const name = h("input", { type: "text", name: "name", autocomplete: "name", required: true });
    const form = h("form", { id: "auth", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const body = signup ? { email: email.value, password: password.value, name: name.value } : { email: email.value, password: password.value };
        const r = await call("POST", signup ? "/auth/register" : "/auth/login", body);
        session.token = r.data.token;
        location.hash = "#/keys";
      } catch (err) { fail(err); }
    } },
      signup ? field(t("name"), name) : null, field(t("email"), email), field(t("password"), password),
      h("button.primary", { type: "submit" }, signup ? t("signup") : t("signin")));
    const other = signup
      ? h("p", {}, t("signup.have"), " ", h("a", { href: "#/signin" }, t("signin")))
      : h("p", {}, t("signin.none"), " ", h("a", { href: "#/signup" }, t("signup")));
    page(signup ? t("signup") : t("signin"), h("section", {}, form, other));
  }

  async function keys() {
    const list = scroller(t("keys.list"));
    const shown = h("div", { id: "new-key" });
    const name = h("input", { name: "name", required: true, value: "My app" });
    const scope = h("select", { name: "scope" }, h("option", { value: "full_access" }, "full_access"), h("option", { value: "read_only" }, "read_only"));
    const days = h("input", { type: "number", name: "expiresInDays", min: 1, max: 365 });
    const form = h("form", { onsubmit: async (e) => {
      e.preventDefault();
      try {
        const body = { name: name.value, scope: scope.value };
        if (days.value) body.expiresInDays = Number(days.value);
        const r = await call("POST", "/auth/api-keys", body);
        const code = h("code", { id: "key-secret" }, r.data.key);
        shown.replaceChildren(h("div.secret", { role: "alert" }, h("strong", {}, t("keys.once")), code,
          h("button.secondary", { type: "button", onclick: async () => {
            try { await navigator.clipboard.writeText(r.data.key); toast(t("copied")); } catch { toast(r.data.key); }
          } }, t("copy"))));
        load();
      } catch (err) { fail(err); }
    } }, field(t("name"), name), field(t("keys.scope"), scope), field(t("keys.expires"), days),
      h("button.primary", { type: "submit" }, t("keys.create")));
    async function load() {
      try {
        const r = await call("GET", "/auth/api-keys");
        list.replaceChildren(h("table", {}, h("thead", {}, h("tr", {}, [t("name"), t("prefix"), t("keys.scope"), t("status"), t("keys.limits"), ""].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, r.data.map((k) => {
            const mph = h("input", { type: "number", min: 1, value: k.endUserLimits?.messagesPerHour ?? "", "aria-label": `${t("keys.mph")} — ${k.name}` });
            const tpd = h("input", { type: "number", min: 1, value: k.endUserLimits?.tokensPerDay ?? "", "aria-label": `${t("keys.tpd")} — ${k.name}` });
            const limits = h("div.row", {}, mph, tpd, h("button.secondary", { type: "button", onclick: async () => {
              const l = {};
              if (mph.value) l.messagesPerHour = Number(mph.value);
              if (tpd.value) l.tokensPerDay = Number(tpd.value);
              try { await call("PATCH", `/auth/api-keys/${k.id}`, { endUserLimits: Object.keys(l).length ? l : null }); toast(t("saved")); } catch (err) { fail(err); }
            } }, t("save")));
            return h("tr", { "data-key": k.id }, h("td", {}, k.name), h("td", {}, h("code", {}, k.prefix)), h("td", {}, k.scope),
              h("td", {}, k.revokedAt ? t("revoked") : t("active")), h("td", {}, k.revokedAt ? "" : limits),
              h("td", {}, k.revokedAt ? "" : h("button.danger", { type: "button", onclick: async () => {
                try { await call("DELETE", `/auth/api-keys/${k.id}`); load(); } catch (err) { fail(err); }
              } }, t("revoke"))));
          }))));
      } catch (err) { fail(err); }
    }
    page(t("keys.title"), h("section", {}, h("h2", {}, t("keys.create")), form, shown), h("section", {}, h("h2", {}, t("keys.list")), list));
    await load();
  }

  async function usage() {
    const today = new Date().toISOString().slice(0, 10);
    const monthAgo = new Date(Date.now() - 29 * 864e5).toISOString().slice(0, 10);
    const from = h("input", { type: "date", value: monthAgo });
    const to = h("input", { type: "date", value: today });
    const group = h("select", {}, ["day", "apiKey", "twin", "endUser"].map((g) => h("option", { value: g }, t(g))));
    const chart = h("div.chart", { id: "chart", role: "img" });
    const table = scroller(t("usage.title"));
    const form = h("form", { onsubmit: (e) => { e.preventDefault(); load(); } },
      field(t("from"), from), field(t("to"), to), field(t("groupBy"), group), h("button.primary", { type: "submit" }, t("show")));
    async function load() {
      try {
        const r = await call("GET", `/usage?from=${from.value}&to=${to.value}&groupBy=${group.value}`);
        const key = { day: "day", apiKey: "apiKeyId", twin: "twinId", endUser: "endUserId" }[group.value];
        const cols = ["requests", "promptTokens", "completionTokens", "totalTokens"];
        const heads = [t(group.value), t("requests"), t("prompt"), t("completion"), t("total")];
        const rows = r.data.map((row) => [row[key] ?? "—", ...cols.map((c) => row[c])]);
        table.replaceChildren(h("table", { id: "usage-table" }, h("thead", {}, h("tr", {}, heads.map((c, i) => h(i ? "th.num" : "th", { scope: "col" }, c)))),
          h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c, i) => h(i ? "td.num" : "td", {}, String(c)))))),
          h("tfoot", {}, h("tr", {}, h("th", { scope: "row" }, t("totals")), cols.map((c) => h("td.num", {}, String(r.meta.totals[c])))))));
        chart.setAttribute("aria-label", `${t("total")}: ${r.meta.totals.totalTokens}`);
        chart.replaceChildren();
        if (group.value === "day" && window.uPlot && r.data.length) {
          // Every day of the range, a day without usage as 0.
          const byDay = new Map(r.data.map((row) => [row.day, row]));
          const xs = [], tokens = [], requests = [];
          for (let d = Date.parse(`${from.value}T00:00:00Z`); d <= Date.parse(`${to.value}T00:00:00Z`); d += 864e5) {
            const row = byDay.get(new Date(d).toISOString().slice(0, 10));
            xs.push(d / 1000);
            tokens.push(row ? row.totalTokens : 0);
            requests.push(row ? row.requests : 0);
          }
          const plot = new window.uPlot({
            width: Math.max(240, chart.clientWidth), height: 220,
            series: [{}, { label: t("total"), stroke: "#2f49c2", width: 2, points: { show: true } },
              { label: t("requests"), stroke: "#137333", scale: "n", points: { show: true } }],
            axes: [{}, { label: t("total") }, { side: 1, scale: "n", label: t("requests") }],
          }, [xs, tokens, requests], chart);
          // Follows the page's width (a phone turned, a window resized).
          new ResizeObserver(() => plot.setSize({ width: Math.max(240, chart.clientWidth), height: 220 })).observe(chart);
        }
      } catch (err) { fail(err); }
    }
    page(t("usage.title"), h("section", {}, form), h("section", {}, chart, table));
    await load();
  }

  function twinForm(twin, done) {
    const name = h("input", { name: "name", required: true, value: twin?.name ?? "" });
    const persona = h("textarea", { name: "systemPrompt", required: true, value: twin?.systemPrompt ?? "" });
    const visibility = h("select", { name: "visibility" }, ["private", "public"].map((v) => h("option", { value: v, selected: twin?.visibility === v }, t(v))));
    const model = h("select", { name: "model" }, h("option", { value: "" }, t("default")),
      (me?.allowedModels ?? []).map((m) => h("option", { value: m, selected: twin?.model === m }, m)));
    const language = h("select", { name: "language" }, ["vi", "en"].map((v) => h("option", { value: v, selected: twin?.language === v }, v)));
    return h("form", { onsubmit: async (e) => {
      e.preventDefault();
      const body = { name: name.value, systemPrompt: persona.value, visibility: visibility.value, language: language.value };
      if (model.value) body.model = model.value;
      try {
        const r = twin ? await call("PATCH", `/twins/${twin.id}`, body) : await call("POST", "/twins", body);
        toast(t("saved"));
        done(r.data);
      } catch (err) { fail(err); }
    } }, field(t("name"), name), field(t("visibility"), visibility), field(t("model"), model), field(t("language"), language),
      field(t("persona"), persona, true), h("button.primary", { type: "submit" }, twin ? t("save") : t("twins.create")));
  }

  async function twins(id) {
    if (id) return twinPage(id);
    const list = h("div.card-list");
    page(t("twins.title"), h("section", {}, h("h2", {}, t("twins.create")), twinForm(null, (tw) => { location.hash = `#/twins/${tw.id}`; })),
      h("section", {}, h("h2", {}, t("twins.title")), list));
    try {
      const r = await call("GET", "/twins?limit=100");
      list.replaceChildren(scroller(t("twins.title"), {}, h("table", {}, h("thead", {}, h("tr", {}, [t("name"), t("visibility"), t("model"), ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, r.data.map((tw) => h("tr", {}, h("td", {}, tw.name), h("td", {}, t(tw.visibility)), h("td", {}, tw.model ?? "—"),
          h("td", {}, h("a", { href: `#/twins/${tw.id}` }, t("open")))))))));
    } catch (err) { fail(err); }
  }

  async function twinPage(id) {
    let twin;
    try { twin = (await call("GET", `/twins/${id}`)).data; } catch (err) { return fail(err); }
    const docs = scroller(t("knowledge.title"), { id: "documents" });
    const title = h("input", { name: "title" });
    const content = h("textarea", { name: "content" });
    // Files go up as they are (multipart); the ingest worker reads them off the request.
    const file = h("input", { type: "file", name: "file", accept: ".pdf,.docx,.html,.htm,.md,.markdown,.txt,application/pdf,text/html,text/markdown,text/plain" });
    const url = h("input", { type: "url", name: "url", placeholder: "https://", inputMode: "url" });
    const add = h("form", { id: "add-document", onsubmit: async (e) => {
      e.preventDefault();
      try {
        if (file.files[0]) {
          const form = new FormData();
          form.append("file", file.files[0]);
          if (title.value.trim()) form.append("title", title.value.trim());
          await call("POST", `/twins/${id}/knowledge`, form);
        } else if (url.value.trim()) {
          await call("POST", `/twins/${id}/knowledge`, { url: url.value.trim(), ...(title.value.trim() ? { title: title.value.trim() } : {}) });
        } else {
          await call("POST", `/twins/${id}/knowledge`, { title: title.value, content: content.value });
        }
        title.value = ""; content.value = ""; file.value = ""; url.value = "";
        loadDocs();
      } catch (err) { fail(err); }
    } }, field(t("title"), title), field(t("file"), file), field(t("pageUrl"), url), field(t("content"), content, true),
      h("button.primary", { type: "submit" }, t("knowledge.add")));
    const feedback = h("div");
    let polling = null;
    const status = (d) => {
      const cell = h("td", { class: "status" }, h(`span.state.${d.status}`, {}, t(`st.${d.status}`)));
      if (d.error) cell.append(h("div.bad", {}, d.error.message));
      return cell;
    };
    const about = (d) => [d.format ?? d.kind, d.pages ? `${d.pages} ${t("pages")}` : null].filter(Boolean).join(" · ");
    async function loadDocs() {
      clearTimeout(polling);
      try {
        const r = await call("GET", `/twins/${id}/knowledge?limit=100`);
        docs.replaceChildren(h("table", {}, h("thead", {}, h("tr", {}, [t("title"), t("status"), t("format"), t("chars"), t("chunks"), t("created"), ""].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, r.data.map((d) => h("tr", { "data-id": d.id }, h("td", {}, d.sourceUrl ? h("a", { href: d.sourceUrl, rel: "noopener noreferrer", target: "_blank" }, d.title) : d.title),
            status(d), h("td", {}, about(d)), h("td.num", {}, String(d.chars)), h("td.num", {}, String(d.chunkCount)),
            h("td", {}, d.createdAt.slice(0, 16).replace("T", " ")),
            h("td", {}, h("div.row", {},
              d.kind === "url" && d.status !== "processing" ? h("button.secondary", { type: "button", onclick: async () => {
                try { await call("POST", `/twins/${id}/knowledge/${d.id}/refresh`, {}); loadDocs(); } catch (err) { fail(err); }
              } }, t("refresh")) : null,
              h("button.danger", { type: "button", onclick: async () => {
                try { await call("DELETE", `/twins/${id}/knowledge/${d.id}`); loadDocs(); } catch (err) { fail(err); }
              } }, t("delete")))))))));
        // Processing happens off the request: look again until every document is settled,
        // as long as this page is shown.
        if (r.data.some((d) => d.status === "processing") && document.contains(docs)) polling = setTimeout(loadDocs, 1000);
      } catch (err) { fail(err); }
    }
    const query = h("input", { name: "query", required: true });
    const found = h("ol", { id: "search-results", class: "card-list" });
    const search = h("form", { onsubmit: async (e) => {
      e.preventDefault();
      try {
        const r = await call("POST", `/twins/${id}/knowledge/search`, { query: query.value });
        found.replaceChildren(...(r.data.length ? r.data.map((p) => h("li", {},
          h("strong", {}, [p.title, p.section, p.page ? `${t("page")} ${p.page}` : null].filter(Boolean).join(" › ")),
          h("div.muted", {}, p.text))) : [h("li", {}, t("search.none"))]));
      } catch (err) { fail(err); }
    } }, field(t("query"), query), h("button.primary", { type: "submit" }, t("search")));
    page(twin.name, h("section", {}, h("h2", {}, t("edit")), twinForm(twin, () => {})),
      h("section", {}, h("h2", {}, t("knowledge.title")), add, docs),
      h("section", {}, h("h2", {}, t("search.title")), search, found),
      h("section", {}, h("h2", {}, t("feedback.title")), feedback));
    loadDocs();
    try {
      const f = (await call("GET", `/twins/${id}/feedback`)).data;
      feedback.replaceChildren(h("p", {}, `${t("positive")}: ${f.totals.positive} · ${t("negative")}: ${f.totals.negative}`),
        h("ul", {}, f.comments.map((c) => h("li", {}, `${c.rating > 0 ? t("positive") : t("negative")}: ${c.comment}`))));
    } catch (err) { fail(err); }
  }

  /** One message, with its sources, suggestions and (for replies) rating buttons. */
  function message(m, conversationId) {
    const el = h(`div.msg.${m.role}`, { "data-id": m.id }, h("span.text", {}, m.content));
    if (m.role !== "assistant") return el;
    const meta = h("div.meta");
    if (m.citations?.length) meta.append(h("div", { class: "sources" }, `${t("sources")}: `, m.citations.map((c) => `[${c.index}] ${c.title}`).join(" · ")));
    if (m.suggestions?.length) meta.append(h("div", {}, `${t("next")}: ${m.suggestions.join(" · ")}`));
    if (conversationId && m.status !== "generating") {
      const rate = (rating) => async () => {
        try {
          const r = await call("POST", `/conversations/${conversationId}/messages/${m.id}/feedback`, { rating });
          toast(t("saved"));
          el.replaceWith(message(r.data.message, conversationId));
        } catch (err) { fail(err); }
      };
      meta.append(h("div.row", {}, `${t("rate")}:`,
        h("button.secondary", { type: "button", "aria-pressed": String(m.feedback?.rating === 1), onclick: rate(1) }, t("positive")),
        h("button.secondary", { type: "button", "aria-pressed": String(m.feedback?.rating === -1), onclick: rate(-1) }, t("negative"))));
    }
    el.append(meta);
    return el;
  }

  /** Reads an SSE response, calling `on(event, data, id)`. */
  async function events(response, on) {
    const reader = response.body.getReader();
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
        let event = "message", data = "", id = null;
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
          else if (line.startsWith("id:")) id = line.slice(3).trim();
        }
        if (data) on(event, JSON.parse(data), id);
      }
    }
  }

  /** Streams into a new reply bubble in `chat`; resolves with the finished message. */
  async function streamInto(chat, response, conversationId) {
    const bubble = h("div.msg.assistant", { "aria-busy": "true" }, h("span.text"));
    chat.append(bubble);
    let final = null;
    await events(response, (event, data) => {
      if (event === "delta") bubble.querySelector(".text").textContent += data.content;
      if (event === "complete") final = data.message;
      if (event === "error") toast(`${t("error")}: ${data.message}`);
    });
    if (final) bubble.replaceWith(message(final, conversationId));
    return final;
  }

  async function playground() {
    const chat = h("div.chat", { id: "play-chat", role: "log", "aria-live": "polite" });
    const twin = h("select", { name: "twin" });
    const text = h("textarea", { name: "message", required: true });
    let conversationId = null;
    const form = h("form", { onsubmit: async (e) => {
      e.preventDefault();
      try {
        if (!conversationId) conversationId = (await call("POST", "/conversations", { twinId: twin.value })).data.id;
        chat.append(h("div.msg.user", {}, text.value));
        const r = await fetch(`${API}/conversations/${conversationId}/messages/stream`, {
          method: "POST", headers: { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json" },
          body: JSON.stringify({ content: text.value }),
        });
        if (!r.ok) throw new Error((await r.json()).message);
        text.value = "";
        await streamInto(chat, r, conversationId);
      } catch (err) { fail(err); }
    } }, field(t("twin"), twin), field(t("message"), text, true), h("div.row", {}, h("button.primary", { type: "submit" }, t("send")),
      h("button.secondary", { type: "button", onclick: () => { conversationId = null; chat.replaceChildren(); } }, t("newConv"))));
    twin.addEventListener("change", () => { conversationId = null; chat.replaceChildren(); });
    page(t("play.title"), h("section", {}, form), h("section", {}, chat));
    try {
      const r = await call("GET", "/twins?limit=100");
      twin.replaceChildren(...r.data.map((tw) => h("option", { value: tw.id }, tw.name)));
    } catch (err) { fail(err); }
  }

  async function conversations(id) {
    if (id) return conversationPage(id);
    const list = scroller(t("conv.title"));
    page(t("conv.title"), h("section", {}, list));
    try {
      const r = await call("GET", "/conversations?limit=100");
      list.replaceChildren(h("table", {}, h("thead", {}, h("tr", {}, [t("title"), t("twin"), t("endUser"), t("messages"), ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, r.data.map((c) => h("tr", {}, h("td", {}, c.title), h("td", {}, h("code", {}, c.twinId)), h("td", {}, c.endUserId ?? "—"),
          h("td.num", {}, String(c.messageCount)), h("td", {}, h("a", { href: `#/conversations/${c.id}` }, t("open"))))))));
    } catch (err) { fail(err); }
  }

  async function conversationPage(id) {
    const chat = h("div.chat", { id: "history", role: "log", "aria-live": "polite" });
    page(t("conv.title"), h("p", {}, h("a", { href: "#/conversations" }, `← ${t("back")}`)), h("section", {}, chat));
    try {
      const r = await call("GET", `/conversations/${id}/messages?limit=100`);
      for (const m of r.data) {
        if (m.status === "generating") {
          // A reply still being written: follow it live from its first event.
          toast(t("following"));
          const s = await fetch(`${API}/conversations/${id}/messages/${m.id}/stream`, { headers: { Authorization: `Bearer ${session.token}` } });
          if (s.ok) streamInto(chat, s, id);
        } else {
          chat.append(message(m, id));
        }
      }
    } catch (err) { fail(err); }
  }

  async function webhooks() {
    const list = scroller(t("hooks.title"));
    const shown = h("div");
    const url = h("input", { type: "url", name: "url", required: true, placeholder: "https://example.com/webhooks/twinexpert" });
    const desc = h("input", { name: "description" });
    const boxes = EVENTS.map((e) => h("label", {}, h("input", { type: "checkbox", value: e, checked: e === "message.completed" }), e));
    const form = h("form", { onsubmit: async (e) => {
      e.preventDefault();
      try {
        const events = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
        const r = await call("POST", "/webhooks", { url: url.value, events, description: desc.value || undefined });
        shown.replaceChildren(h("div.secret", { role: "alert" }, t("hooks.once"), h("code", {}, r.data.secret)));
        load();
      } catch (err) { fail(err); }
    } }, field(t("url"), url), field(t("description"), desc), h("fieldset", { class: "wide" }, h("legend", {}, t("events")), boxes),
      h("button.primary", { type: "submit" }, t("hooks.create")));
    async function load() {
      try {
        const r = await call("GET", "/webhooks");
        list.replaceChildren(h("table", {}, h("thead", {}, h("tr", {}, [t("url"), t("events"), t("status"), ""].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, r.data.map((w) => {
            const deliveries = h("div");
            return [h("tr", {}, h("td", {}, w.url), h("td", {}, w.events.join(", ")), h("td", {}, w.enabled ? t("active") : "—"),
              h("td", {}, h("button.secondary", { type: "button", onclick: async () => {
                try {
                  const d = await call("GET", `/webhooks/${w.id}/deliveries`);
                  deliveries.replaceChildren(h("ul", {}, d.data.map((x) => h("li", {}, `${x.eventType} · ${x.status} · ${x.attempts} `,
                    h("button.link", { type: "button", onclick: () => call("POST", `/webhooks/${w.id}/deliveries/${x.id}/redeliver`, {}).then(() => toast(t("saved")), fail) }, t("redeliver"))))));
                } catch (err) { fail(err); }
              } }, t("deliveries")), h("button.danger", { type: "button", onclick: async () => {
                try { await call("DELETE", `/webhooks/${w.id}`); load(); } catch (err) { fail(err); }
              } }, t("delete")))),
            h("tr", {}, h("td", { colSpan: 4 }, deliveries))];
          }))));
      } catch (err) { fail(err); }
    }
    page(t("hooks.title"), h("section", {}, form, shown), h("section", {}, list));
    await load();
  }

  // ---- shell -------------------------------------------------------------------------------

  function translateShell() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
    for (const b of document.querySelectorAll(".lang button")) b.setAttribute("aria-pressed", String(b.dataset.lang === lang));
  }

  async function route() {
    const [, name = "", id] = location.hash.replace(/^#/, "").split("/");
    const signedIn = Boolean(session.token);
    document.getElementById("nav").hidden = !signedIn;
    document.getElementById("signout").hidden = !signedIn;
    for (const a of document.querySelectorAll("nav a")) {
      if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    document.body.dataset.ready = "false";
    if (!signedIn) {
      signin(name === "signup");
    } else {
      if (!me) {
        try { me = (await call("GET", "/auth/me")).data; } catch (err) { fail(err); }
      }
      const pages = { keys, usage, twins, playground, conversations, webhooks };
      await (pages[name] || keys)(id);
    }
    document.body.dataset.ready = "true";
    view().focus({ preventScroll: true });
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const b of document.querySelectorAll(".lang button")) {
      b.addEventListener("click", () => { lang = b.dataset.lang; translateShell(); route(); });
    }
    document.getElementById("signout").addEventListener("click", () => {
      session.token = null;
      me = null;
      location.hash = "#/signin";
    });
    window.addEventListener("hashchange", route);
    translateShell();
    route();
  });
})();
