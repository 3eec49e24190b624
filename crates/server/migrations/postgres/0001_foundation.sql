-- Families, accounts, consent, children, sessions, one-time email tokens, audit log and jobs.
-- Times are Unix milliseconds (BIGINT), identifiers are UUID text: the same columns on both backends.

CREATE TABLE families (
    id TEXT PRIMARY KEY NOT NULL,
    is_demo BOOLEAN NOT NULL DEFAULT FALSE,
    pin_hash TEXT,
    pin_failed_attempts BIGINT NOT NULL DEFAULT 0,
    pin_locked_until BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    family_id TEXT REFERENCES families(id) ON DELETE CASCADE,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('parent', 'moderator', 'admin')),
    email_verified_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX users_family ON users(family_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kid_child_id TEXT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    subject_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX email_tokens_user ON email_tokens(user_id);

CREATE TABLE consents (
    id TEXT PRIMARY KEY NOT NULL,
    family_id TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('coppa', 'cloud_ai')),
    method TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    ip TEXT,
    privacy_policy_version TEXT NOT NULL,
    terms_version TEXT NOT NULL,
    confirmation_sent_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX consents_family ON consents(family_id, kind);

CREATE TABLE children (
    id TEXT PRIMARY KEY NOT NULL,
    family_id TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    age BIGINT NOT NULL CHECK (age BETWEEN 3 AND 17),
    persona TEXT NOT NULL CHECK (persona IN ('raccoon', 'jellyfish', 'robot')),
    created_at BIGINT NOT NULL
);
CREATE INDEX children_family ON children(family_id);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    actor_user_id TEXT,
    family_id TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    ip TEXT
);
CREATE INDEX audit_log_family ON audit_log(family_id, at);
CREATE INDEX audit_log_at ON audit_log(at);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    done_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs(done_at, run_at);
