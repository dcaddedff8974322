-- The database and role msctl's EnsureDatabase makes for alpha.
CREATE ROLE alpha LOGIN PASSWORD 'alpha';
CREATE DATABASE alpha OWNER alpha;
REVOKE CONNECT, TEMPORARY ON DATABASE alpha FROM PUBLIC;
