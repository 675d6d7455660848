-- The assistant: which servers each user enabled, conversations and their messages, runs and
-- the events they emitted (stored before they are sent), remembered tool approvals, the audit.

CREATE TABLE assistant_enablements (
    user_ref TEXT NOT NULL,
    server_ref TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_ref, server_ref)
);

CREATE TABLE assistant_conversations (
    id TEXT PRIMARY KEY,
    user_ref TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX assistant_conversations_user ON assistant_conversations (user_ref, updated_at);

CREATE TABLE assistant_messages (
    conversation_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- A run waiting for an approval or a sign-in keeps what it needs to go on in `state`, so any
-- replica can resume it.
CREATE TABLE assistant_runs (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    user_ref TEXT NOT NULL,
    status TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX assistant_runs_user_status ON assistant_runs (user_ref, status);

CREATE TABLE assistant_run_events (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE assistant_approvals (
    user_ref TEXT NOT NULL,
    server_ref TEXT NOT NULL,
    tool TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_ref, server_ref, tool)
);

CREATE TABLE assistant_audit (
    id TEXT PRIMARY KEY,
    user_ref TEXT NOT NULL,
    run_id TEXT NOT NULL,
    server_ref TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments_digest TEXT NOT NULL,
    decision TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX assistant_audit_user ON assistant_audit (user_ref, created_at);
