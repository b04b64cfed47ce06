-- Rate limits are quotas now (0005); nothing counts audit entries by actor
-- any more, and the log is read newest first by id. Two of its three
-- indexes only cost every audited lookup, mail and change two more B-tree
-- inserts. The one by subject stays: "what happened to contact:7" is the
-- question an investigation asks.
DROP INDEX audit_log_by_actor;
DROP INDEX audit_log_by_time;
