-- Streams a node is relaying, from the device's acceptance to their record. A node that dies
-- (kill -9, power loss) cannot write their records; the node that finds it dead, or the node
-- itself when it starts again, writes them from here. Times are Unix ms.
CREATE TABLE streams_in_flight (
    stream_id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    module_id TEXT,
    name TEXT NOT NULL,
    requested_ms BIGINT NOT NULL,
    caller TEXT,
    api_version TEXT
);
CREATE INDEX streams_in_flight_node ON streams_in_flight (node_id);
