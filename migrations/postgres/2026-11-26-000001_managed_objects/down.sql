DROP TABLE llmgate_managed_objects;
