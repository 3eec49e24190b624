-- Buddy chat: conversations (one per kid-mode session and child), chat sessions (stretches of chatting that
-- the session limit counts), messages with their verdicts, safety events for parents, and the limits a
-- parent sets per child. Never a raw unsafe text beyond the (redacted) message itself.

CREATE TABLE conversations (
    id TEXT PRIMARY KEY NOT NULL,
    child_id TEXT NOT NULL REFERENCES children(id) ON DELETE CASCADE,
    family_id TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    -- A digest of the kid-mode browser session (never the session token or its stored hash).
    session_key TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_message_at BIGINT NOT NULL,
    -- Extractive summary of the turns that no longer fit the model's memory, and the last seq it covers.
    summary TEXT NOT NULL DEFAULT '',
    summarized_through BIGINT NOT NULL DEFAULT 0,
    UNIQUE (session_key, child_id)
);
CREATE INDEX conversations_child ON conversations(child_id, last_message_at);

CREATE TABLE chat_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    child_id TEXT NOT NULL REFERENCES children(id) ON DELETE CASCADE,
    started_at BIGINT NOT NULL,
    last_active_at BIGINT NOT NULL,
    break_reminded BOOLEAN NOT NULL DEFAULT FALSE,
    ai_disclosed BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX chat_sessions_child ON chat_sessions(child_id, last_active_at);
CREATE INDEX chat_sessions_conversation ON chat_sessions(conversation_id, last_active_at);

CREATE TABLE messages (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    child_id TEXT NOT NULL REFERENCES children(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('child', 'assistant')),
    text TEXT NOT NULL,
    level BIGINT NOT NULL CHECK (level BETWEEN 0 AND 4),
    -- JSON: {"level","action","categories":{name: score},"pii":[kinds]}; no text.
    verdict TEXT NOT NULL DEFAULT '{}',
    provider TEXT,
    model TEXT,
    first_token_ms BIGINT,
    total_ms BIGINT,
    whisper BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE INDEX messages_child ON messages(child_id, created_at);

CREATE TABLE safety_events (
    id TEXT PRIMARY KEY NOT NULL,
    family_id TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    child_id TEXT NOT NULL REFERENCES children(id) ON DELETE CASCADE,
    conversation_id TEXT REFERENCES conversations(id) ON DELETE CASCADE,
    -- The message it is about: the child's message, or the reply for a caught unsafe generation (whose
    -- row is written when the reply ends, so it may be missing if the process died mid-reply).
    message_id TEXT,
    level BIGINT NOT NULL CHECK (level BETWEEN 0 AND 4),
    kind TEXT NOT NULL CHECK (kind IN ('input_blocked', 'crisis', 'unsafe_generation', 'redirect')),
    categories TEXT NOT NULL DEFAULT '[]',
    reasons TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    acknowledged_at BIGINT
);
CREATE INDEX safety_events_family ON safety_events(family_id, created_at);
CREATE INDEX safety_events_child ON safety_events(child_id, created_at);

CREATE TABLE child_limits (
    child_id TEXT PRIMARY KEY NOT NULL REFERENCES children(id) ON DELETE CASCADE,
    daily_limit_minutes BIGINT CHECK (daily_limit_minutes BETWEEN 1 AND 1440),
    -- Quiet hours in minutes from the family's local midnight; both set or both unset.
    quiet_hours_start BIGINT CHECK (quiet_hours_start BETWEEN 0 AND 1439),
    quiet_hours_end BIGINT CHECK (quiet_hours_end BETWEEN 0 AND 1439),
    utc_offset_minutes BIGINT NOT NULL DEFAULT 0 CHECK (utc_offset_minutes BETWEEN -720 AND 840),
    updated_at BIGINT NOT NULL
);
