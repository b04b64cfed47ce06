-- Rate limits and caps. Every use of a limited thing (a search by an
-- identity, a login mail to a contact, an answer to an address) is taken
-- here, checked and counted in one serialised step by the store's writer, so
-- concurrent turns and instances can never together exceed a limit (audit
-- rows, written when a turn commits, came too late for that).
--
-- Uses are counted in buckets of a sixtieth of the limit's period (at least
-- a second): a check sums at most ~61 rows however busy the quota, and a use
-- leaves the window at its bucket's end (a little late: limits err on the
-- side of refusing).
CREATE TABLE quota_counts (
    quota   TEXT    NOT NULL,             -- what is limited, e.g. search:who:<identity>
    bucket  INTEGER NOT NULL,             -- the bucket's start, Unix ms
    uses    INTEGER NOT NULL,
    PRIMARY KEY (quota, bucket)
);

-- A use is taken under a hold key (the conversation, the version its turn
-- writes and the step, or the mail being answered): taking the same hold again
-- is a no-op, so a turn that is retried counts once.
CREATE TABLE quota_holds (
    hold   TEXT    NOT NULL,
    quota  TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (hold, quota)
);

-- Old holds and buckets are pruned by time.
CREATE INDEX quota_holds_by_time ON quota_holds (at);
CREATE INDEX quota_counts_by_time ON quota_counts (bucket);
