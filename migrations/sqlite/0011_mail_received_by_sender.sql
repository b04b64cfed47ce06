-- The daily answer caps are quotas now (0005): nothing reads mail_received
-- by sender any more, and its index cost every mail an insert at a random
-- place of a B-tree that grows with every mail ever received.
DROP INDEX mail_received_by_sender;
