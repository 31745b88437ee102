-- Deleting a twin hides it instead of removing the row, so conversations with it — the
-- owner's and other users' — keep their history (docs: twins). A deleted twin's slug is
-- renamed so the owner can reuse it.
ALTER TABLE twins ADD COLUMN deleted_at TEXT;
