DROP TABLE llmgate_audit_logs;
