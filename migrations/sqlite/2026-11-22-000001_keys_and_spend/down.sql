DROP TABLE llmgate_proxy_spend;
DROP TABLE llmgate_spend_logs;
DROP TABLE llmgate_key_model_spend;
DROP TABLE llmgate_keys;
