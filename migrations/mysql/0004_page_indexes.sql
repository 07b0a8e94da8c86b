-- Indexes for the lists the pages show over a large data set
-- (load-tests/pages; figures in docs/benchmarks.md).

-- A customer's tickets are found through their visitor records.
CREATE INDEX visitors_user ON visitors (user_id);

-- The ticket list's order, newest first with the id breaking ties: a page's
-- ids come from the index alone, however deep the page.
CREATE INDEX tickets_updated_id ON tickets (updated_at, id);
DROP INDEX tickets_updated ON tickets;

-- An agent's queue by status ("my open tickets"), not every ticket they
-- ever had. (The old index also served the foreign key on assignee_id;
-- InnoDB lets it go once the new one, which starts with that column, exists.)
CREATE INDEX tickets_assignee_status ON tickets (assignee_id, status, updated_at);
DROP INDEX tickets_assignee ON tickets;

-- The assignee choices on every console page: staff without reading every
-- customer's row.
CREATE INDEX users_role ON users (role, name);
