-- Contacts (visitors) carry what an integration knows about them: a JSON
-- object of attributes (a plan, an account manager, a CRM id), set through
-- the API (domain::contacts).
ALTER TABLE visitors ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
