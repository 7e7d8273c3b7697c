-- The cache controls a key's requests may set (LiteLLM's allowed_cache_controls); empty = all.
ALTER TABLE llmgate_keys ADD COLUMN allowed_cache_controls TEXT NOT NULL DEFAULT '[]';
