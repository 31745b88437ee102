// The TypeScript peer: /api/v1/health and the keyed GET /api/v1/twins/{id}, written the way a
// team would with Hono on Workers. It mirrors the Rust worker's work for these routes: request
// id, key format and checksum, SHA-256 key hash, the key's Durable Object (verification record
// cached from D1, counters in memory written to its SQLite at most once a second, one round
// trip), the same D1 query, the envelope, the rate-limit headers and one JSON log line after
// the response.
import { Hono } from "hono";
import { DurableObject } from "cloudflare:workers";

type Env = {
  DB: D1Database;
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
  RATE_LIMIT_WINDOW_SECS?: string;
  RATE_LIMIT_BURST_PERIOD_SECS?: string;
  RATE_LIMIT_READ_ONLY_HOURLY?: string;
  RATE_LIMIT_READ_ONLY_BURST?: string;
  RATE_LIMIT_FULL_ACCESS_HOURLY?: string;
  RATE_LIMIT_FULL_ACCESS_BURST?: string;
  KEY_RECORD_TTL_SECS?: string;
};
type Scope = "read_only" | "full_access";
type Policy = { limit: number; windowSecs: number; burst: number; burstPeriodSecs: number };
type Counters = { windowStartMs: number | null; windowCount: number; tokens: number | null; lastMs: number };
type Decision = { allowed: boolean; limit: number; remaining: number; resetAt: number; resetIn: number;
  rejectedBy: { reason: "hourly" | "burst"; limit: number; retryAfter: number } | null };
type KeyRecord = { id: string; userId: string; name: string; scope: Scope; expiresAtMs: number | null; revoked: boolean };

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(text: string): number {
  let crc = 0xffffffff;
  for (const b of new TextEncoder().encode(text)) crc = CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function base62(n: number, width: number): string {
  let out = "";
  for (let i = 0; i < width; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

function wellFormed(key: string): boolean {
  if (!/^te_[0-9A-Za-z]{36}$/.test(key)) return false;
  return base62(crc32(key.slice(3, 33)), 6) === key.slice(33);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function requestId(header: string | undefined): string {
  if (header && /^[A-Za-z0-9._-]{1,128}$/.test(header)) return header;
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return "req_" + [...bytes].map((b) => BASE62[b % 62]).join("");
}

function policy(env: Env, scope: Scope): Policy {
  const n = (v: string | undefined, d: number) => (v ? Number(v) : d);
  const ro = scope === "read_only";
  return {
    limit: ro ? n(env.RATE_LIMIT_READ_ONLY_HOURLY, 200) : n(env.RATE_LIMIT_FULL_ACCESS_HOURLY, 500),
    burst: ro ? n(env.RATE_LIMIT_READ_ONLY_BURST, 50) : n(env.RATE_LIMIT_FULL_ACCESS_BURST, 100),
    windowSecs: n(env.RATE_LIMIT_WINDOW_SECS, 3600),
    burstPeriodSecs: n(env.RATE_LIMIT_BURST_PERIOD_SECS, 60),
  };
}

// The same fixed hourly window + token bucket as the Rust core.
function check(p: Policy, s: Counters, nowMs: number): [Decision, Counters] {
  const now = Math.max(nowMs, s.lastMs);
  const windowMs = p.windowSecs * 1000;
  const fresh = s.windowStartMs === null || now >= s.windowStartMs + windowMs;
  const start = fresh ? now : (s.windowStartMs as number);
  const count = fresh ? 0 : s.windowCount;
  const refill = p.burst / (Math.max(p.burstPeriodSecs, 1) * 1000);
  const tokens = s.tokens === null ? p.burst : Math.min(p.burst, s.tokens + (now - s.lastMs) * refill);
  const end = start + windowMs;
  const secs = (ms: number) => Math.ceil(Math.max(ms, 0) / 1000);
  let rejectedBy: Decision["rejectedBy"] = null;
  if (count >= p.limit) rejectedBy = { reason: "hourly", limit: p.limit, retryAfter: Math.max(secs(end - now), 1) };
  else if (tokens < 1) rejectedBy = { reason: "burst", limit: p.burst, retryAfter: Math.max(secs((1 - tokens) / refill), 1) };
  const allowed = rejectedBy === null;
  const nextCount = allowed ? count + 1 : count;
  return [
    { allowed, limit: p.limit, remaining: Math.max(p.limit - nextCount, 0), resetAt: secs(end), resetIn: secs(end - now), rejectedBy },
    { windowStartMs: start, windowCount: nextCount, tokens: allowed ? tokens - 1 : tokens, lastMs: now },
  ];
}

// One instance per key, named by the key's hash: verifies (record cached from D1) and counts.
export class RateLimiter extends DurableObject<Env> {
  private record: { value: KeyRecord | null; loadedMs: number } | null = null;
  private counters: Counters | null = null;
  private saving = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
  }

  async admitKey(keyHash: string, readOnly: Policy, fullAccess: Policy): Promise<{ record: KeyRecord | null; decision: Decision | null }> {
    const now = Date.now();
    const ttl = Number(this.env.KEY_RECORD_TTL_SECS ?? 300) * 1000;
    if (!this.record || now - this.record.loadedMs >= ttl) {
      const row = await this.env.DB.prepare(
        "SELECT id, user_id, name, scope, expires_at, revoked_at FROM api_keys WHERE key_hash = ?1",
      ).bind(keyHash).first<{ id: string; user_id: string; name: string; scope: Scope; expires_at: string | null; revoked_at: string | null }>();
      const value = row && { id: row.id, userId: row.user_id, name: row.name, scope: row.scope,
        expiresAtMs: row.expires_at ? Date.parse(row.expires_at) : null, revoked: row.revoked_at !== null };
      this.record = { value, loadedMs: now };
    }
    const record = this.record.value;
    if (!record || record.revoked || (record.expiresAtMs !== null && record.expiresAtMs <= now)) {
      return { record, decision: null };
    }
    if (!this.counters) {
      const saved = this.ctx.storage.sql.exec<{ v: string }>("SELECT v FROM kv WHERE k = 'rate'").toArray()[0];
      this.counters = saved ? JSON.parse(saved.v) : { windowStartMs: null, windowCount: 0, tokens: null, lastMs: 0 };
    }
    const [decision, next] = check(record.scope === "full_access" ? fullAccess : readOnly, this.counters!, now);
    this.counters = next;
    // Counted in memory, written at most once a second, as the Rust object does.
    if (!this.saving) {
      this.saving = true;
      setTimeout(() => {
        this.saving = false;
        this.ctx.storage.sql.exec("INSERT OR REPLACE INTO kv (k, v) VALUES ('rate', ?)", JSON.stringify(this.counters));
      }, 1000);
    }
    return { record, decision };
  }
}

type Vars = { requestId: string; keyId?: string; userId?: string; error?: string };
const app = new Hono<{ Bindings: Env; Variables: Vars }>();

function envelope(c: { get: (k: "requestId") => string }, data: unknown) {
  return { success: true, data, meta: { timestamp: new Date().toISOString(), requestId: c.get("requestId") } };
}

function failure(c: any, status: number, error: string, message: string, details: unknown = {}) {
  c.set("error", error);
  const timestamp = new Date().toISOString();
  return c.json({ success: false, message, error, statusCode: status, timestamp, path: c.req.path, method: c.req.method,
    meta: { timestamp, requestId: c.get("requestId") }, details }, status);
}

// Request id, the headers every answer carries, and the log line after the response.
app.use("*", async (c, next) => {
  const started = Date.now();
  c.set("requestId", requestId(c.req.header("X-Request-Id")));
  await next();
  c.header("X-Request-Id", c.get("requestId"));
  c.header("X-Content-Type-Options", "nosniff");
  const line = JSON.stringify({ requestId: c.get("requestId"), method: c.req.method, path: c.req.path, status: c.res.status,
    durationMs: Date.now() - started, userId: c.get("userId"), keyId: c.get("keyId"), error: c.get("error") });
  c.executionCtx.waitUntil(new Promise<void>((resolve) => setTimeout(() => { console.log(line); resolve(); }, 0)));
});

app.get("/api/v1/health", (c) => c.json(envelope(c, { status: "ok", version: "peer" })));

app.get("/api/v1/twins/:id", async (c) => {
  const auth = c.req.header("Authorization");
  const key = auth?.startsWith("Bearer ") ? auth.slice(7).trim() : c.req.header("X-API-Key");
  if (!key) return failure(c, 401, "UNAUTHORIZED", "Authentication required");
  if (!wellFormed(key)) return failure(c, 401, "INVALID_API_KEY_FORMAT", "Invalid API key format");
  const keyHash = await sha256Hex(key);
  const stub = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(`key:${keyHash}`));
  const readOnly = policy(c.env, "read_only");
  const fullAccess = policy(c.env, "full_access");
  const { record, decision } = await stub.admitKey(keyHash, readOnly, fullAccess);
  if (!record || !decision) return failure(c, 401, "INVALID_API_KEY", "Invalid API key");
  c.set("keyId", record.id);
  c.set("userId", record.userId);
  const p = record.scope === "full_access" ? fullAccess : readOnly;
  c.header("X-RateLimit-Limit", String(decision.limit));
  c.header("X-RateLimit-Remaining", String(decision.remaining));
  c.header("X-RateLimit-Reset", String(decision.resetAt));
  c.header("X-RateLimit-Window", String(p.windowSecs));
  c.header("RateLimit-Policy", `"hourly";q=${p.limit};w=${p.windowSecs}, "burst";q=${p.burst};w=${p.burstPeriodSecs}`);
  c.header("RateLimit", `"hourly";r=${decision.remaining};t=${decision.resetIn}`);
  if (decision.rejectedBy) {
    c.header("Retry-After", String(decision.rejectedBy.retryAfter));
    return failure(c, 429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded", decision.rejectedBy);
  }
  const twin = await c.env.DB.prepare(
    "SELECT id, owner_id, name, slug, headline, description, avatar_url, expertise, language, greeting, system_prompt, " +
      "visibility, model, created_at, updated_at FROM twins WHERE id = ?2 AND " +
      "(twins.deleted_at IS NULL AND (twins.visibility = 'public' OR twins.owner_id = ?1))",
  ).bind(record.userId, c.req.param("id")).first<Record<string, any>>();
  if (!twin) return failure(c, 404, "NOT_FOUND", "Twin not found");
  const { owner_id, system_prompt, avatar_url, created_at, updated_at, expertise, ...rest } = twin;
  const view: Record<string, unknown> = { ...rest, avatarUrl: avatar_url, expertise: JSON.parse(expertise),
    createdAt: created_at, updatedAt: updated_at };
  if (owner_id === record.userId) view.systemPrompt = system_prompt;
  return c.json(envelope(c, view));
});

app.notFound((c) => failure(c, 404, "NOT_FOUND", "Route not found"));

export default app;
