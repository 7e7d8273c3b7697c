-- Users, teams, team members, end users and tags (LiteLLM's UserTable, TeamTable,
-- TeamMembership, EndUserTable and TagTable) in one table: each has the same limits (models,
-- budget, rpm, tpm, parallel requests) and spend. `kind` is user, team, member, end_user or tag;
-- `scope` is the team of a member ('' for every other kind). JSON values are TEXT so both
-- backends share one schema.
CREATE TABLE llmgate_entities (
    kind TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT '',
    id TEXT NOT NULL,
    alias TEXT,
    email TEXT,
    role TEXT,
    models TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    details TEXT NOT NULL DEFAULT '{}',
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    max_budget DOUBLE PRECISION,
    budget_duration TEXT,
    budget_reset_at TIMESTAMP,
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    max_parallel_requests BIGINT,
    blocked BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (kind, scope, id)
);
-- A user's memberships (kind member, id = the user).
CREATE INDEX llmgate_entities_id ON llmgate_entities (id, kind);
CREATE INDEX llmgate_keys_user ON llmgate_keys (user_id);
CREATE INDEX llmgate_keys_team ON llmgate_keys (team_id);

-- Spend per day of each user, team, end user and tag, by key, model and provider (LiteLLM's
-- DailyUserSpend, DailyTeamSpend, DailyEndUserSpend, DailyTagSpend): written with the spend
-- batches, so daily activity does not depend on the spend logs being kept.
CREATE TABLE llmgate_daily_spend (
    kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    date TEXT NOT NULL,
    api_key TEXT NOT NULL,
    model TEXT NOT NULL,
    model_group TEXT NOT NULL,
    provider TEXT NOT NULL,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    api_requests BIGINT NOT NULL DEFAULT 0,
    successful_requests BIGINT NOT NULL DEFAULT 0,
    failed_requests BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, entity_id, date, api_key, model, model_group, provider)
);
CREATE INDEX llmgate_daily_spend_date ON llmgate_daily_spend (kind, date);

-- The spend log names the key's user and team, the request's end user and its tags. Before,
-- user_id held the request's `user` (the end user): it moves to end_user. No index is added:
-- each one costs every request's row a B-tree insert, and the reads filter by time first.
ALTER TABLE llmgate_spend_logs ADD COLUMN team_id TEXT;
ALTER TABLE llmgate_spend_logs ADD COLUMN end_user TEXT;
ALTER TABLE llmgate_spend_logs ADD COLUMN request_tags TEXT NOT NULL DEFAULT '[]';
UPDATE llmgate_spend_logs SET end_user = user_id, user_id = NULL;
