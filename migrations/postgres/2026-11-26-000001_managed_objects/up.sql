-- Files and batches created through the gateway (LiteLLM's managed objects): which deployment
-- holds each, and which key created it ('master' for the master key), so later calls go to the
-- same deployment and a virtual key reaches only its own objects. A batch's cost is charged
-- once, when it is first seen completed: charged_at and spend record it.
CREATE TABLE llmgate_managed_objects (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    purpose TEXT,
    input_file_id TEXT,
    created_at TIMESTAMP NOT NULL,
    spend DOUBLE PRECISION,
    charged_at TIMESTAMP
);
CREATE INDEX llmgate_managed_objects_owner ON llmgate_managed_objects (owner, kind, deployment_id);
