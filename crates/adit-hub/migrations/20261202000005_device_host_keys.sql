-- The SSH host key the console's terminal was told to trust on first use, per device (issue
-- 16): a later connection that meets another key is refused. The key goes with its device, in
-- the same statement (a device made again under the id is a new machine with a new key).
CREATE TABLE device_host_keys (
    device_id TEXT PRIMARY KEY REFERENCES devices (device_id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    trusted_ms BIGINT NOT NULL
);
