-- Per-end-user limits set on an API key (SPEC §16): {"messagesPerHour": n, "tokensPerDay": n},
-- JSON; NULL when the key sets none. Cached with the key's record by its Durable Object.
ALTER TABLE api_keys ADD COLUMN end_user_limits TEXT;
