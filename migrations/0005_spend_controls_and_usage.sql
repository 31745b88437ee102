-- End users (an app's own users, per conversation) and usage aggregates (docs/usage.md).
ALTER TABLE conversations ADD COLUMN end_user_id TEXT;
CREATE INDEX conversations_by_user_end_user ON conversations (user_id, end_user_id, updated_at);

-- One row per account, UTC day, key, twin and end user; each ended turn adds itself. '' in a
-- key column stands for "none" (a session's turn has no API key, a conversation no end user).
CREATE TABLE usage_daily (
  user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  day               TEXT NOT NULL,             -- YYYY-MM-DD, UTC
  api_key_id        TEXT NOT NULL DEFAULT '',
  twin_id           TEXT NOT NULL,
  end_user_id       TEXT NOT NULL DEFAULT '',
  requests          INTEGER NOT NULL DEFAULT 0,
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  total_tokens      INTEGER NOT NULL DEFAULT 0,
  estimated_tokens  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, day, api_key_id, twin_id, end_user_id)
) WITHOUT ROWID;
