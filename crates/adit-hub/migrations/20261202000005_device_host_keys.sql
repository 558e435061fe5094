-- The SSH host key the console's terminal trusted on first use, per device (issue 16): a later
-- connection that meets another key is refused. Deleting the device forgets its key.
CREATE TABLE device_host_keys (
    device_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    trusted_ms BIGINT NOT NULL
);
