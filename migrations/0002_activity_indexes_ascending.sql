-- "Newest activity first" reads these indexes backwards: ascending columns walked in reverse
-- give `updated_at DESC, rowid DESC` with no sort step (EXPLAIN QUERY PLAN shows no temp B-tree).
DROP INDEX conversations_by_user_activity;
DROP INDEX conversations_by_user_twin_activity;
CREATE INDEX conversations_by_user_activity ON conversations (user_id, updated_at);
CREATE INDEX conversations_by_user_twin_activity ON conversations (user_id, twin_id, updated_at);
