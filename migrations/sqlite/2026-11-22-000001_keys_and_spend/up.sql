-- Virtual keys (stored only as SHA-256 hex), per-key per-model spend, the spend log, and
-- the proxy-wide spend. JSON-valued fields are TEXT so both backends share one schema.
CREATE TABLE llmgate_keys (
    token TEXT PRIMARY KEY NOT NULL,
    key_name TEXT NOT NULL,
    key_alias TEXT,
    spend DOUBLE NOT NULL DEFAULT 0,
    max_budget DOUBLE,
    budget_duration TEXT,
    budget_reset_at TIMESTAMP,
    expires TIMESTAMP,
    models TEXT NOT NULL DEFAULT '[]',
    aliases TEXT NOT NULL DEFAULT '{}',
    config TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}',
    model_max_budget TEXT NOT NULL DEFAULT '{}',
    model_rpm_limit TEXT NOT NULL DEFAULT '{}',
    model_tpm_limit TEXT NOT NULL DEFAULT '{}',
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    max_parallel_requests BIGINT,
    user_id TEXT,
    team_id TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    blocked BOOLEAN NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX llmgate_keys_alias ON llmgate_keys (key_alias);
CREATE INDEX llmgate_keys_created ON llmgate_keys (created_at);

CREATE TABLE llmgate_key_model_spend (
    token TEXT NOT NULL,
    model TEXT NOT NULL,
    spend DOUBLE NOT NULL DEFAULT 0,
    PRIMARY KEY (token, model)
);

CREATE TABLE llmgate_spend_logs (
    request_id TEXT PRIMARY KEY NOT NULL,
    api_key TEXT NOT NULL,
    model TEXT NOT NULL,
    model_group TEXT NOT NULL,
    model_id TEXT NOT NULL,
    api_base TEXT NOT NULL,
    provider TEXT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    total_tokens BIGINT NOT NULL,
    spend DOUBLE NOT NULL,
    start_time TIMESTAMP NOT NULL,
    end_time TIMESTAMP NOT NULL,
    status TEXT NOT NULL,
    cache_hit BOOLEAN NOT NULL DEFAULT 0,
    user_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX llmgate_spend_logs_key_time ON llmgate_spend_logs (api_key, start_time);
CREATE INDEX llmgate_spend_logs_time ON llmgate_spend_logs (start_time);

CREATE TABLE llmgate_proxy_spend (
    id INTEGER PRIMARY KEY NOT NULL,
    spend DOUBLE NOT NULL DEFAULT 0,
    budget_reset_at TIMESTAMP
);
INSERT INTO llmgate_proxy_spend (id, spend) VALUES (1, 0);
