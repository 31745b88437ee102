-- Idempotency-Key records (docs/idempotency.md), scoped to the account. One conditional upsert
-- claims a key; `response` is NULL while the first request runs. Times are Unix ms.
CREATE TABLE idempotency_keys (
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  key         TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  fingerprint TEXT NOT NULL,                 -- SHA-256 of method, path and canonical JSON body
  response    TEXT,                          -- the remembered response (JSON); NULL: running
  created_at  INTEGER NOT NULL,
  lease_until INTEGER NOT NULL,              -- a running request older than this has died
  expires_at  INTEGER NOT NULL,              -- kept at least 24 h
  PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
-- Cleanup takes the oldest expired rows a few at a time, on each claim.
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
