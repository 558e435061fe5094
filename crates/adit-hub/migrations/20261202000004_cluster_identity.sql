-- One row: the id of the cluster this registry belongs to, made by the first node that needs
-- it. It names the cluster's NATS subjects, so clusters sharing a NATS server stay apart.
CREATE TABLE cluster_identity (
    id INTEGER PRIMARY KEY,
    cluster_id TEXT NOT NULL
);
