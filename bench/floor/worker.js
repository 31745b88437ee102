// The floor (see wrangler.toml): no key parsing or hashing, no envelope, no headers, no log
// line, no validation — only the round trips the product contract requires (SPEC: exact
// counters in one Durable Object per key; twins in D1; the question stored by the
// conversation's object before the model is called).
import { DurableObject } from "cloudflare:workers";

// Exact per-key counting in the one instance's memory, written at most once a second, as the
// limits object does (FLOOR_EAGER_COUNT=1: written on every request, as it did before).
export class Counter extends DurableObject {
  count() {
    const sql = this.ctx.storage.sql;
    if (this.n === undefined) {
      sql.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)");
      this.n = sql.exec("SELECT v FROM kv WHERE k = 'n'").toArray()[0]?.v ?? 0;
    }
    this.n += 1;
    const save = () => sql.exec("INSERT OR REPLACE INTO kv (k, v) VALUES ('n', ?)", this.n);
    if (this.env.FLOOR_EAGER_COUNT === "1") {
      save();
    } else if (!this.saving) {
      this.saving = true;
      setTimeout(() => {
        this.saving = false;
        save();
      }, 1000);
    }
    return this.n;
  }
}

// A conversation: stores the question, then streams the model's answer straight through.
export class Turn extends DurableObject {
  async fetch(req) {
    const { prompt, content } = await req.json();
    const sql = this.ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, content TEXT NOT NULL)");
    sql.exec("INSERT INTO messages (content) VALUES (?)", content);
    const upstream = await fetch(`${this.env.UPSTREAM_BASE_URL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${this.env.UPSTREAM_API_KEY}` },
      body: JSON.stringify({
        model: "twin-local-1",
        stream: true,
        messages: [{ role: "system", content: prompt }, { role: "user", content }],
      }),
    });
    return new Response(upstream.body, { headers: { "content-type": "text/event-stream" } });
  }
}

const counted = (env) => env.COUNTER.get(env.COUNTER.idFromName("key")).count();
const twin = (env, id) => env.DB.prepare("SELECT * FROM twins WHERE id = ?").bind(id).first();

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    // No auth at all: it answers only on this machine, and only when bench/run started it.
    if (!LOOPBACK.has(url.hostname) || env.BENCH_FLOOR !== "local") {
      return new Response("bench-floor runs only under bench/run on 127.0.0.1", { status: 403 });
    }
    const path = url.pathname;
    const id = path.slice(path.lastIndexOf("/") + 1);
    if (path.startsWith("/twins/")) {
      const [n, row] = await Promise.all([counted(env), twin(env, id)]);
      return Response.json({ n, twin: row });
    }
    if (path.startsWith("/turns/")) {
      const twinId = new URL(req.url).searchParams.get("twin");
      const [, { content }, row] = await Promise.all([counted(env), req.json(), twin(env, twinId)]);
      const conversation = env.TURN.get(env.TURN.idFromName(id));
      return conversation.fetch("http://turn/", {
        method: "POST",
        body: JSON.stringify({ prompt: row.system_prompt, content }),
      });
    }
    return Response.json({ floor: true });
  },
};
