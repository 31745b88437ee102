-- Messages now live in each conversation's Durable Object (its own SQLite), which also owns
-- the running generation; D1 keeps the conversation row (owner, twin, title, counts, times).
DROP INDEX IF EXISTS messages_by_conversation_time;
DROP TABLE messages;
