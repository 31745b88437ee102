-- Each twin's documents, passages and index now live in its own Durable Object (SPEC §14);
-- the object copies what the tables below hold for its twin once, on first use. The twin's
-- row keeps only how many documents it has, so a turn asks the object only when there are any.
ALTER TABLE twins ADD COLUMN knowledge_docs INTEGER NOT NULL DEFAULT 0;
UPDATE twins SET knowledge_docs =
  (SELECT COUNT(*) FROM knowledge_documents d WHERE d.twin_id = twins.id);
