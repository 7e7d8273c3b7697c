ALTER TABLE llmgate_keys DROP COLUMN allowed_cache_controls;
