-- At most one active (not revoked) consent of each kind per family: giving consent again supersedes the
-- old record, and two simultaneous requests cannot both record one.
CREATE UNIQUE INDEX consents_one_active ON consents(family_id, kind) WHERE revoked_at IS NULL;
-- Kid-mode sessions of a child are found when the child is deleted.
CREATE INDEX sessions_kid_child ON sessions(kid_child_id);
