DROP TABLE llmgate_proxy_models;
