-- Who changed which key, how and when (LiteLLM's LiteLLM_AuditLog). JSON values are TEXT so
-- both backends share one schema; they never hold a plaintext key.
CREATE TABLE llmgate_audit_logs (
    id TEXT PRIMARY KEY NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    changed_by TEXT NOT NULL,
    changed_by_api_key TEXT NOT NULL,
    action TEXT NOT NULL,
    table_name TEXT NOT NULL,
    object_id TEXT NOT NULL,
    before_value TEXT,
    updated_values TEXT
);
CREATE INDEX llmgate_audit_logs_time ON llmgate_audit_logs (updated_at);
CREATE INDEX llmgate_audit_logs_object ON llmgate_audit_logs (object_id, updated_at);
