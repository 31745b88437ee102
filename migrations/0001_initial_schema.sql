-- TwinExpert schema. Timestamps are RFC 3339 UTC text with milliseconds, which sort as text.
-- Every table a user owns rows in carries the owner's id, so queries filter by it in SQL.

CREATE TABLE users (
  id            TEXT PRIMARY KEY,
  email         TEXT NOT NULL UNIQUE,          -- stored lower-cased: unique ignoring case
  name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  password_hash TEXT NOT NULL,                 -- pbkdf2-sha256$iterations$salt$hash
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL
);

CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  scope        TEXT NOT NULL CHECK (scope IN ('read_only', 'full_access')),
  key_hash     TEXT NOT NULL UNIQUE,           -- SHA-256 hex of the whole key; never the key
  prefix       TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  expires_at   TEXT,
  last_used_at TEXT,
  revoked_at   TEXT
);
CREATE INDEX api_keys_by_user ON api_keys (user_id, created_at);

CREATE TABLE twins (
  id            TEXT PRIMARY KEY,
  owner_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  slug          TEXT NOT NULL,
  headline      TEXT NOT NULL DEFAULT '',
  description   TEXT NOT NULL DEFAULT '',
  avatar_url    TEXT,
  expertise     TEXT NOT NULL DEFAULT '[]',    -- JSON array of strings
  language      TEXT NOT NULL DEFAULT 'en',
  greeting      TEXT NOT NULL DEFAULT '',
  system_prompt TEXT NOT NULL,
  visibility    TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('public', 'private')),
  model         TEXT,
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  UNIQUE (owner_id, slug)
);
CREATE INDEX twins_by_visibility ON twins (visibility, created_at);
CREATE INDEX twins_by_owner ON twins (owner_id, created_at);

CREATE TABLE conversations (
  id              TEXT PRIMARY KEY,
  user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  twin_id         TEXT NOT NULL REFERENCES twins(id) ON DELETE CASCADE,
  title           TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  message_count   INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,               -- last activity: creation, rename or message
  last_message_at TEXT
);
CREATE INDEX conversations_by_user_activity ON conversations (user_id, updated_at DESC);
CREATE INDEX conversations_by_user_twin_activity ON conversations (user_id, twin_id, updated_at DESC);

CREATE TABLE messages (
  id                TEXT PRIMARY KEY,
  conversation_id   TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role              TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
  content           TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('completed', 'incomplete', 'failed')),
  model             TEXT,
  prompt_tokens     INTEGER,
  completion_tokens INTEGER,
  total_tokens      INTEGER,
  latency_ms        INTEGER,
  created_at        TEXT NOT NULL
);
-- History in order: rowid (implicit in the index) breaks ties within one millisecond.
CREATE INDEX messages_by_conversation_time ON messages (conversation_id, created_at);
