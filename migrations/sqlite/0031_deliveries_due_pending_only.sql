-- PostgreSQL's migration 0031 limits `deliveries_due` to pending rows
-- (issue 14). SQLite keeps the full index: its planner uses a partial
-- index only where a query's terms appear in the index's own WHERE clause,
-- and the statements that ask for both pending states (`status IN
-- ('queued', 'sending')`) would then read the whole issue instead.
-- Kept as a migration so both backends count the same versions.
SELECT 1;
