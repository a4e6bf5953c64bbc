-- Audit trail, PostgreSQL dialect. Applied by the store's migration runner inside one transaction that holds
-- a transaction-scoped advisory lock; the runner also creates audit_schema_migrations (version integer
-- PRIMARY KEY, applied_at timestamptz) before any script.

-- One row per audited event. seq is the record's place in its tenant's hash chain (1, 2, 3, ...);
-- prev_hash/hash link it to the previous record (see AuditChain). timestamptz keeps whole microseconds,
-- the precision the chain hashes, so a record re-hashes identically after a round trip.
-- tenant_id uses the "C" collation: byte order is the same on every server whatever its locale, which keeps
-- the sort order (and so the paging cursor) and the order appenders lock tenant heads in stable and cheap.
-- The other indexed text columns are only ever compared for equality, so they use "C" too: the cheapest
-- comparison for their indexes whatever the server's locale.
CREATE TABLE audit_records (
    tenant_id       text COLLATE "C" NOT NULL,
    seq             bigint           NOT NULL,
    id              text COLLATE "C" NOT NULL,
    ts              timestamptz      NOT NULL,
    agent_id        text COLLATE "C",
    user_id         text,
    session_id      text COLLATE "C",
    token_id        text,
    kind            text             NOT NULL,
    server          text,
    tool            text COLLATE "C",
    arguments       text,
    arguments_hash  text,
    decision        text             NOT NULL,
    code            text,
    outcome         text             NOT NULL,
    error_type      text,
    result_hash     text,
    result_size     bigint,
    latency_ms      double precision,
    confirmation_id text,
    silo            text,
    detail          text,
    prev_hash       text             NOT NULL,
    hash            text             NOT NULL,
    CONSTRAINT audit_records_pkey PRIMARY KEY (tenant_id, seq),
    -- A retried batch must fail as a whole rather than record an event twice.
    CONSTRAINT audit_records_id_key UNIQUE (id)
);

-- Newest-first paging over every tenant, in exactly the query's sort order (ts DESC, tenant_id, seq DESC).
CREATE INDEX ix_audit_records_ts ON audit_records (ts DESC, tenant_id, seq DESC);
-- The same order within one tenant (the usual operator view), and purge's "ts < before" per tenant.
CREATE INDEX ix_audit_records_tenant_ts ON audit_records (tenant_id, ts DESC, seq DESC);
CREATE INDEX ix_audit_records_tenant_agent ON audit_records (tenant_id, agent_id);
CREATE INDEX ix_audit_records_session ON audit_records (session_id);
CREATE INDEX ix_audit_records_tool ON audit_records (tool);

-- The head of each tenant's chain: the last appended record. Appenders lock this row for the length of their
-- transaction, which serialises appends per tenant across silos; verify ends here, so records removed from the
-- end of the chain are still detected.
CREATE TABLE audit_heads (
    tenant_id text COLLATE "C" NOT NULL PRIMARY KEY,
    seq       bigint           NOT NULL,
    hash      text             NOT NULL
);

-- Written by purge: the last purged record of a tenant, so verify can start the retained chain from it.
CREATE TABLE audit_anchors (
    tenant_id text COLLATE "C" NOT NULL PRIMARY KEY,
    seq       bigint           NOT NULL,
    hash      text             NOT NULL
);
