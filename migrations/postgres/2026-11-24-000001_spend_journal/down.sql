DROP TABLE llmgate_spend_journal;
