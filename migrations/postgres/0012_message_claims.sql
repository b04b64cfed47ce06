-- A chat channel claims the outbound messages it is about to send, until
-- sending_until (Unix ms): another instance sharing the store leaves them
-- alone while the claim holds, so a member is not sent a reply twice (a
-- redelivered event reaching a second instance while the first still posts).
-- A sender that dies mid-send lets its claim lapse; the sweep sends then.
ALTER TABLE messages ADD COLUMN sending_until BIGINT;
