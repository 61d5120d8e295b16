-- Runs once, when the postgres volume is created. The control database `huiliu` is created by
-- POSTGRES_DB; this adds the demo source database used by the bundled demo pipelines.
CREATE DATABASE demo OWNER huiliu;
