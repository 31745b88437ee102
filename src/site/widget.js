// <twin-chat>: a twin in any page, with no framework and no API key (docs/browser.md).
//
//   <script src="https://<api-host>/widget.js" defer></script>
//   <twin-chat twin="twn_…" token-url="/twin-token"></twin-chat>
//
// `token-url` is a route of the host app's own server that answers POST with a client token
// ({token, expiresAt}, minted with POST /api/v1/client-tokens). Optional: `api` (the API's
// origin; by default the one this script came from), `lang` (vi or en; by default the page's),
// `heading`. The reply streams as it is written; a page reloaded mid-reply picks the reply up
// where it was (Last-Event-ID) with nothing lost or doubled; its sources and the twin's
// follow-up questions show under it.
(() => {
  "use strict";
  if (customElements.get("twin-chat")) return;
  const scriptOrigin = document.currentScript ? new URL(document.currentScript.src).origin : location.origin;

  const TEXT = {
    en: {
      heading: "Ask the expert", placeholder: "Type your question…", send: "Send", label: "Your message",
      thinking: "Writing…", sources: "Sources", next: "You could ask", error: "Something went wrong. Try again.",
      limit: "Too many messages for now. Try again later.", you: "You", twin: "Expert", stop: "Stop",
      conversation: "Conversation",
    },
    vi: {
      heading: "Hỏi chuyên gia", placeholder: "Nhập câu hỏi của bạn…", send: "Gửi", label: "Tin nhắn của bạn",
      thinking: "Đang viết…", sources: "Nguồn", next: "Bạn có thể hỏi", error: "Đã có lỗi. Vui lòng thử lại.",
      limit: "Bạn đã gửi quá nhiều tin nhắn. Vui lòng thử lại sau.", you: "Bạn", twin: "Chuyên gia", stop: "Dừng",
      conversation: "Cuộc trò chuyện",
    },
  };

  const STYLE = `
    :host { display: block; max-width: 100%; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
            color: #1b1f24; --accent: #0b5cad; }
    .box { display: flex; flex-direction: column; border: 1px solid #c9d1d9; border-radius: 12px; background: #fff;
           height: var(--twin-chat-height, 520px); min-width: 0; overflow: hidden; }
    h2 { margin: 0; padding: 12px 16px; font-size: 16px; border-bottom: 1px solid #e1e4e8; }
    .log { flex: 1; overflow-y: auto; padding: 12px 16px; display: flex; flex-direction: column; gap: 10px; }
    .msg { max-width: 88%; padding: 8px 12px; border-radius: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
    .user { align-self: flex-end; background: var(--accent); color: #fff; }
    .assistant { align-self: flex-start; background: #f0f3f6; }
    .who { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
    .meta { font-size: 13px; color: #3d444d; margin-top: 6px; }
    .meta ol { margin: 4px 0 0; padding-left: 20px; }
    .meta a { color: var(--accent); }
    .next { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 6px; }
    .next button { font: inherit; font-size: 13px; border: 1px solid var(--accent); color: var(--accent); background: #fff;
                   border-radius: 999px; padding: 4px 10px; cursor: pointer; min-height: 32px; }
    form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #e1e4e8; }
    textarea { flex: 1; min-width: 0; font: inherit; resize: none; border: 1px solid #8c959f; border-radius: 8px; padding: 8px; }
    button.stop { font: inherit; border: 1px solid var(--accent); border-radius: 8px; padding: 0 12px; background: #fff;
                  color: var(--accent); cursor: pointer; min-height: 44px; }
    button.send { font: inherit; border: 0; border-radius: 8px; padding: 0 16px; background: var(--accent); color: #fff;
                  cursor: pointer; min-height: 44px; }
    button:focus-visible, textarea:focus-visible, a:focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
    button[disabled] { opacity: .6; cursor: default; }
    .status { font-size: 13px; color: #3d444d; padding: 0 16px 6px; min-height: 1.5em; }
    .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  `;

  /** Server-Sent Events from a fetch response: calls `on({id, event, data})` per event. */
  async function readEvents(response, on) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const e = { id: null, event: "message", data: "" };
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (field === "id") e.id = val;
          else if (field === "event") e.event = val;
          else if (field === "data") e.data += (e.data ? "\n" : "") + val;
        }
        if (e.data) on({ ...e, data: JSON.parse(e.data) });
      }
    }
  }

  class TwinChat extends HTMLElement {
    connectedCallback() {
      if (this.shadowRoot) return;
      const lang = (this.getAttribute("lang") || document.documentElement.lang || navigator.language || "en")
        .toLowerCase().startsWith("vi") ? "vi" : "en";
      this.t = TEXT[lang];
      this.twin = this.getAttribute("twin") || "";
      this.api = (this.getAttribute("api") || scriptOrigin).replace(/\/$/, "") + "/api/v1";
      this.tokenUrl = this.getAttribute("token-url") || "";
      this.storeKey = `twin-chat:${this.twin}`;
      const root = this.attachShadow({ mode: "open" });
      const id = `tc-${Math.random().toString(36).slice(2)}`;
      root.innerHTML = `
        <style>${STYLE}</style>
        <section class="box" lang="${lang}" aria-labelledby="${id}-h">
          <h2 id="${id}-h"></h2>
          <div class="log" role="log" aria-live="polite" aria-relevant="additions text" tabindex="0"></div>
          <div class="status" role="status"></div>
          <form>
            <label class="visually-hidden" for="${id}-in"></label>
            <textarea id="${id}-in" rows="2"></textarea>
            <button class="send" type="submit"></button>
            <button class="stop" type="button" hidden></button>
          </form>
        </section>`;
      const $ = (s) => root.querySelector(s);
      $("h2").textContent = this.getAttribute("heading") || this.t.heading;
      $("label").textContent = this.t.label;
      $("textarea").placeholder = this.t.placeholder;
      $("button.send").textContent = this.t.send;
      $(".log").setAttribute("aria-label", this.t.conversation);
      this.log = $(".log");
      this.status = $(".status");
      this.input = $("textarea");
      this.button = $("button.send");
      // Stops the reply being written (POST …/cancel); what arrived so far is kept.
      this.stopButton = $("button.stop");
      this.stopButton.textContent = this.t.stop;
      this.stopButton.addEventListener("click", () => {
        const { conversationId, streaming } = this.saved;
        if (conversationId && streaming) {
          this.call(`/conversations/${conversationId}/messages/${streaming.messageId}/cancel`, {
            method: "POST", body: "{}",
          }).catch((e) => this.fail(e));
        }
      });
      $("form").addEventListener("submit", (e) => {
        e.preventDefault();
        this.send(this.input.value);
      });
      this.input.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
          e.preventDefault();
          this.send(this.input.value);
        }
      });
      this.restore().finally(() => this.setAttribute("data-ready", "true"));
    }

    // What survives a reload: the conversation, and a reply being streamed (its text so far
    // and the id of the last event that text includes).
    get saved() {
      try { return JSON.parse(sessionStorage.getItem(this.storeKey)) || {}; } catch { return {}; }
    }
    save(patch) {
      sessionStorage.setItem(this.storeKey, JSON.stringify({ ...this.saved, ...patch }));
    }

    async token(renew) {
      if (!renew && this.tok && Date.parse(this.tok.expiresAt) - Date.now() > 30_000) return this.tok.token;
      const r = await fetch(this.tokenUrl, { method: "POST", credentials: "same-origin" });
      if (!r.ok) throw new Error(`token-url answered ${r.status}`);
      this.tok = await r.json();
      return this.tok.token;
    }

    /** A call to the API with the client token, minted again once if it expired. */
    async call(path, init = {}, retried = false) {
      const headers = { Authorization: `Bearer ${await this.token(retried)}`, ...(init.headers || {}) };
      if (init.body) headers["Content-Type"] = "application/json";
      const r = await fetch(this.api + path, { ...init, headers });
      if (r.status === 401 && !retried) return this.call(path, init, true);
      return r;
    }

    async restore() {
      const { conversationId, streaming } = this.saved;
      if (!conversationId) return;
      try {
        const r = await this.call(`/conversations/${conversationId}/messages?limit=100`);
        if (!r.ok) {
          sessionStorage.removeItem(this.storeKey);
          return;
        }
        const { data } = await r.json();
        for (const m of data) {
          if (streaming && m.id === streaming.messageId) {
            // Mid-reply when the page went away: its text as this page had it, then the
            // events after the last one that text includes.
            const bubble = this.bubble("assistant", streaming.text);
            this.follow(conversationId, m.id, bubble, streaming.lastEventId);
          } else {
            this.render(m);
          }
        }
      } catch (e) {
        this.fail(e);
      }
    }

    bubble(role, text) {
      const el = document.createElement("div");
      el.className = `msg ${role}`;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = `${role === "user" ? this.t.you : this.t.twin}: `;
      const body = document.createElement("span");
      body.className = "text";
      body.textContent = text;
      el.append(who, body);
      this.log.append(el);
      this.log.scrollTop = this.log.scrollHeight;
      return el;
    }

    render(m) {
      const el = this.bubble(m.role, m.content);
      if (m.role === "assistant") this.finish(el, m);
      return el;
    }

    /** A finished reply: its final text, its sources, the twin's follow-up questions. */
    finish(el, m) {
      el.dataset.done = "true";
      el.querySelector(".text").textContent = m.content;
      el.querySelectorAll(".meta").forEach((n) => n.remove());
      if (m.citations && m.citations.length) {
        const meta = document.createElement("div");
        meta.className = "meta";
        meta.textContent = `${this.t.sources}:`;
        const list = document.createElement("ol");
        for (const c of m.citations) {
          const li = document.createElement("li");
          li.value = c.index;
          if (c.sourceUrl && /^https?:/.test(c.sourceUrl)) {
            const a = document.createElement("a");
            a.href = c.sourceUrl;
            a.target = "_blank";
            a.rel = "noopener noreferrer";
            a.textContent = c.title;
            li.append(a);
          } else {
            li.textContent = c.title;
          }
          list.append(li);
        }
        meta.append(list);
        el.append(meta);
      }
      if (m.suggestions && m.suggestions.length) {
        const meta = document.createElement("div");
        meta.className = "meta";
        meta.textContent = `${this.t.next}:`;
        const row = document.createElement("div");
        row.className = "next";
        for (const q of m.suggestions) {
          const b = document.createElement("button");
          b.type = "button";
          b.textContent = q;
          b.addEventListener("click", () => this.send(q));
          row.append(b);
        }
        meta.append(row);
        el.append(meta);
      }
      this.log.scrollTop = this.log.scrollHeight;
    }

    busy(on) {
      this.busyNow = on;
      this.button.disabled = on;
      this.stopButton.hidden = !on;
      this.log.setAttribute("aria-busy", String(on));
      this.status.textContent = on ? this.t.thinking : "";
    }

    fail(e) {
      this.status.textContent = e && e.limited ? this.t.limit : this.t.error;
    }

    async send(text) {
      text = (text || "").trim();
      if (!text || this.busyNow) return;
      this.busy(true);
      try {
        let { conversationId } = this.saved;
        if (!conversationId) {
          const r = await this.call("/conversations", { method: "POST", body: JSON.stringify({ twinId: this.twin }) });
          if (!r.ok) throw await this.problem(r);
          conversationId = (await r.json()).data.id;
          this.save({ conversationId });
        }
        this.input.value = "";
        this.bubble("user", text);
        const r = await this.call(`/conversations/${conversationId}/messages/stream`, {
          method: "POST", body: JSON.stringify({ content: text }),
        });
        if (!r.ok) throw await this.problem(r);
        const bubble = this.bubble("assistant", "");
        await this.stream(r, bubble, r.headers.get("X-Message-Id"), "", 0);
      } catch (e) {
        this.fail(e);
      } finally {
        this.busy(false);
      }
    }

    async problem(r) {
      const body = await r.json().catch(() => ({}));
      const e = new Error(body.error || `HTTP ${r.status}`);
      e.limited = r.status === 429;
      return e;
    }

    /** Resumes the reply `messageId` after event `after` into `bubble`. */
    async follow(conversationId, messageId, bubble, after) {
      this.busy(true);
      try {
        const r = await this.call(`/conversations/${conversationId}/messages/${messageId}/stream`, {
          headers: { "Last-Event-ID": String(after) },
        });
        if (!r.ok) throw await this.problem(r);
        await this.stream(r, bubble, messageId, bubble.querySelector(".text").textContent, after);
      } catch (e) {
        this.fail(e);
      } finally {
        this.busy(false);
      }
    }

    async stream(response, bubble, messageId, text, lastEventId) {
      const out = bubble.querySelector(".text");
      const keep = () => this.save({ streaming: { messageId, text, lastEventId } });
      keep();
      await readEvents(response, (e) => {
        if (e.id) lastEventId = Number(e.id);
        if (e.event === "delta") {
          text += e.data.content;
          out.textContent = text;
          this.log.scrollTop = this.log.scrollHeight;
          keep();
        } else if (e.event === "complete") {
          this.finish(bubble, e.data.message);
          this.save({ streaming: null });
        } else if (e.event === "error") {
          this.save({ streaming: null });
          this.fail(e.data);
        }
      });
    }
  }

  customElements.define("twin-chat", TwinChat);
})();
