-- A claim of a queued mail names its claimant: a fencing token, checked when
-- the worker extends its lease to send, marks the mail sent or sets its retry.
-- A worker whose lease ran out and was reclaimed can change nothing.
ALTER TABLE outbox ADD COLUMN claim_token TEXT;
