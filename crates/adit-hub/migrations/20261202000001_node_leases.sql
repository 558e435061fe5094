-- Nodes sharing the registry renew a lease here; a node whose lease ran out is dead, and any
-- other node marks the devices it held as disconnected. Times are Unix ms.
CREATE TABLE node_leases (
    node_id TEXT PRIMARY KEY,
    expires_ms BIGINT NOT NULL
);
