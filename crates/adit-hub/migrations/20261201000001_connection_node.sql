-- Which hub node holds each device's connection, so that a node restarting after a crash can
-- mark exactly the devices it held as disconnected (and, with several nodes, only those).
-- NULL: not connected, or connected through a hub older than this column.
ALTER TABLE devices ADD COLUMN connection_node TEXT;
