-- Portable between SQLite and PostgreSQL: TEXT and BIGINT only, times as Unix milliseconds.
CREATE TABLE shared_access_policies (
    name TEXT PRIMARY KEY,
    primary_key TEXT NOT NULL,
    secondary_key TEXT NOT NULL,
    rights BIGINT NOT NULL
);

CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    generation_id TEXT NOT NULL,
    etag TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    status_updated_ms BIGINT NOT NULL,
    auth_type TEXT NOT NULL,
    primary_key TEXT,
    secondary_key TEXT,
    primary_thumbprint TEXT,
    secondary_thumbprint TEXT,
    iot_edge BIGINT NOT NULL,
    device_scope TEXT,
    parent_scopes TEXT,
    connection_state TEXT NOT NULL,
    connection_state_updated_ms BIGINT,
    last_activity_ms BIGINT,
    created_ms BIGINT NOT NULL
);
