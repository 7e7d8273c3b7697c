-- Each spend journal's mark: the number of its last change the database holds, written in the
-- same transaction as that change's spend, so a replayed journal never counts anything twice.
CREATE TABLE llmgate_spend_journal (
    journal_id TEXT PRIMARY KEY NOT NULL,
    applied_seq BIGINT NOT NULL
);
