-- Knowledge (docs/knowledge.md): a twin's documents, split into passages that are exact
-- substrings of the document, and a full-text index of the passages for retrieval (BM25).
CREATE TABLE knowledge_documents (
  id          TEXT PRIMARY KEY,
  twin_id     TEXT NOT NULL REFERENCES twins(id),
  title       TEXT NOT NULL,
  source_url  TEXT,
  chars       INTEGER NOT NULL,
  chunk_count INTEGER NOT NULL,
  created_at  TEXT NOT NULL
);
CREATE INDEX knowledge_documents_by_twin ON knowledge_documents (twin_id, created_at DESC, id);

-- `id` is also the passage's rowid in knowledge_fts. `twin_id` is repeated here so retrieval
-- filters by twin without another join.
CREATE TABLE knowledge_passages (
  id          INTEGER PRIMARY KEY,
  document_id TEXT NOT NULL REFERENCES knowledge_documents(id) ON DELETE CASCADE,
  twin_id     TEXT NOT NULL,
  seq         INTEGER NOT NULL,
  text        TEXT NOT NULL,
  UNIQUE (document_id, seq)
);

-- The searchable text is the passage and its document's title, lower-cased with đ/Đ read as
-- d (the tokenizer folds every other Vietnamese mark, also on letters with two marks). Porter
-- stemming lets "shifts" find "shift" in English; Vietnamese syllables pass through it as
-- they are.
-- `wrangler d1 export` refuses databases with virtual tables: see README, "Backups".
CREATE VIRTUAL TABLE knowledge_fts USING fts5(body, tokenize = 'porter unicode61 remove_diacritics 2');
