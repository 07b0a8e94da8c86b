-- The admins' report (domain::reports) reads one period: conversations
-- started, tickets opened, answered or resolved, and ratings given since a
-- moment. The ticket and rating indexes carry the columns the report reads,
-- so a period is read from the index alone rather than row by row
-- (docs/benchmarks.md, "Ticket pages over a large data set").
CREATE INDEX conversations_created ON conversations (created_at);
CREATE INDEX tickets_created ON tickets (created_at, first_response_at, assignee_id);
CREATE INDEX tickets_resolved ON tickets (resolved_at, created_at, assignee_id);
CREATE INDEX csat_ratings_created ON csat_ratings (created_at, conversation_id, score);
