-- Audit trail, SQLite dialect. Applied by the store's migration runner inside one BEGIN IMMEDIATE transaction,
-- which also creates audit_schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT) before any script.

-- One row per audited event. seq is the record's place in its tenant's hash chain (1, 2, 3, ...);
-- prev_hash/hash link it to the previous record (see AuditChain). ts is UTC in whole unix microseconds,
-- the precision the chain hashes, so a record re-hashes identically after a round trip.
CREATE TABLE audit_records (
    tenant_id       TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    id              TEXT    NOT NULL UNIQUE,
    ts              INTEGER NOT NULL,
    agent_id        TEXT,
    user_id         TEXT,
    session_id      TEXT,
    token_id        TEXT,
    kind            TEXT    NOT NULL,
    server          TEXT,
    tool            TEXT,
    arguments       TEXT,
    arguments_hash  TEXT,
    decision        TEXT    NOT NULL,
    code            TEXT,
    outcome         TEXT    NOT NULL,
    error_type      TEXT,
    result_hash     TEXT,
    result_size     INTEGER,
    latency_ms      REAL,
    confirmation_id TEXT,
    silo            TEXT,
    detail          TEXT,
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

-- Newest-first paging over every tenant, in exactly the query's sort order (ts DESC, tenant_id, seq DESC).
CREATE INDEX ix_audit_records_ts ON audit_records (ts DESC, tenant_id, seq DESC);
-- The same order within one tenant (the usual operator view), and purge's "ts < before" per tenant.
CREATE INDEX ix_audit_records_tenant_ts ON audit_records (tenant_id, ts DESC, seq DESC);
CREATE INDEX ix_audit_records_tenant_agent ON audit_records (tenant_id, agent_id);
CREATE INDEX ix_audit_records_session ON audit_records (session_id);
CREATE INDEX ix_audit_records_tool ON audit_records (tool);

-- The head of each tenant's chain: the last appended record. Appends continue from here; verify ends here,
-- so records removed from the end of the chain are still detected.
CREATE TABLE audit_heads (
    tenant_id TEXT    NOT NULL PRIMARY KEY,
    seq       INTEGER NOT NULL,
    hash      TEXT    NOT NULL
);

-- Written by purge: the last purged record of a tenant, so verify can start the retained chain from it.
CREATE TABLE audit_anchors (
    tenant_id TEXT    NOT NULL PRIMARY KEY,
    seq       INTEGER NOT NULL,
    hash      TEXT    NOT NULL
);
