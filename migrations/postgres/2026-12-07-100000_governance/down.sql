UPDATE llmgate_spend_logs SET user_id = end_user;
ALTER TABLE llmgate_spend_logs DROP COLUMN request_tags;
ALTER TABLE llmgate_spend_logs DROP COLUMN end_user;
ALTER TABLE llmgate_spend_logs DROP COLUMN team_id;
DROP TABLE llmgate_daily_spend;
DROP INDEX llmgate_keys_team;
DROP INDEX llmgate_keys_user;
DROP TABLE llmgate_entities;
