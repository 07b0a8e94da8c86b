-- Contacts (visitors) carry what an integration knows about them: a JSON
-- object of attributes (a plan, an account manager, a CRM id), set through
-- the API (domain::contacts). TEXT takes no plain default on MySQL 8.
ALTER TABLE visitors ADD COLUMN attributes TEXT;
