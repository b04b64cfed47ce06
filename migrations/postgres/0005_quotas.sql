-- Rate limits and caps. Every use of a limited thing (a search by an
-- identity, a login mail to a contact, an answer to an address) takes a row
-- here, checked and counted in one serialised step, so concurrent turns and
-- instances can never together exceed a limit (audit rows, written when a
-- turn commits, came too late for that).
--
-- A use is taken under a hold key (the conversation, its version and the
-- step, or the mail being answered): taking the same hold again is a no-op,
-- so a turn that is retried counts once.

CREATE TABLE quota_uses (
    hold   TEXT    NOT NULL,
    quota  TEXT    NOT NULL,             -- what is limited, e.g. search:who:<identity>
    at     BIGINT NOT NULL,
    PRIMARY KEY (hold, quota)
);

CREATE INDEX quota_uses_by_quota ON quota_uses (quota, at);

-- Old uses are pruned by time.
CREATE INDEX quota_uses_by_time ON quota_uses (at);
