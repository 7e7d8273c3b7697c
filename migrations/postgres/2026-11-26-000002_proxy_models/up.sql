-- Models added through /model/new (LiteLLM's LiteLLM_ProxyModelTable, with store_model_in_db).
-- litellm_params and model_info are JSON text; every credential in litellm_params is encrypted
-- (AES-256-GCM) unless it is an os.environ/ reference.
CREATE TABLE llmgate_proxy_models (
    id TEXT PRIMARY KEY NOT NULL,
    model_name TEXT NOT NULL,
    litellm_params TEXT NOT NULL,
    model_info TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
-- Every instance polls max(updated_at) and the row count to see changes.
CREATE INDEX llmgate_proxy_models_updated ON llmgate_proxy_models (updated_at);
