-- A twin's link to its expert's own website (optional).
ALTER TABLE twins ADD COLUMN website_url TEXT;
