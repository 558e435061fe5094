-- Nodes look up the devices one node holds: a dead node's release and each node's periodic
-- re-check of its own devices.
CREATE INDEX devices_connection_node ON devices (connection_node);
