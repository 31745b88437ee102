-- The characters of a twin's documents (kept by its object, SPEC §14), so an account's total
-- is one indexed sum in the owner check: MAX_KNOWLEDGE_CHARS_PER_ACCOUNT.
ALTER TABLE twins ADD COLUMN knowledge_chars INTEGER NOT NULL DEFAULT 0;
UPDATE twins SET knowledge_chars =
  (SELECT COALESCE(SUM(chars), 0) FROM knowledge_documents d WHERE d.twin_id = twins.id);
