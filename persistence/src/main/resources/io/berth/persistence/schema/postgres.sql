-- Pekko Persistence JDBC 1.1.1 tables (schema/postgres/postgres-create-schema.sql of the jar),
-- rewritten so that every statement is idempotent. Run under an advisory lock by SchemaInstaller.

CREATE TABLE IF NOT EXISTS event_journal (
  ordering BIGSERIAL,
  persistence_id VARCHAR(255) NOT NULL,
  sequence_number BIGINT NOT NULL,
  deleted BOOLEAN DEFAULT FALSE NOT NULL,
  writer VARCHAR(255) NOT NULL,
  write_timestamp BIGINT,
  adapter_manifest VARCHAR(255),
  event_ser_id INTEGER NOT NULL,
  event_ser_manifest VARCHAR(255) NOT NULL,
  event_payload BYTEA NOT NULL,
  meta_ser_id INTEGER,
  meta_ser_manifest VARCHAR(255),
  meta_payload BYTEA,
  PRIMARY KEY (persistence_id, sequence_number)
);

CREATE UNIQUE INDEX IF NOT EXISTS event_journal_ordering_idx ON event_journal (ordering);

CREATE TABLE IF NOT EXISTS event_tag (
  event_id BIGINT,
  tag VARCHAR(256),
  PRIMARY KEY (event_id, tag),
  CONSTRAINT fk_event_journal FOREIGN KEY (event_id) REFERENCES event_journal (ordering) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS snapshot (
  persistence_id VARCHAR(255) NOT NULL,
  sequence_number BIGINT NOT NULL,
  created BIGINT NOT NULL,
  snapshot_ser_id INTEGER NOT NULL,
  snapshot_ser_manifest VARCHAR(255) NOT NULL,
  snapshot_payload BYTEA NOT NULL,
  meta_ser_id INTEGER,
  meta_ser_manifest VARCHAR(255),
  meta_payload BYTEA,
  PRIMARY KEY (persistence_id, sequence_number)
);

CREATE TABLE IF NOT EXISTS durable_state (
  global_offset BIGSERIAL,
  persistence_id VARCHAR(255) NOT NULL,
  revision BIGINT NOT NULL,
  state_payload BYTEA NOT NULL,
  state_serial_id INTEGER NOT NULL,
  state_serial_manifest VARCHAR(255),
  tag VARCHAR,
  state_timestamp BIGINT NOT NULL,
  PRIMARY KEY (persistence_id)
);

CREATE INDEX IF NOT EXISTS state_tag_idx ON durable_state (tag);
CREATE INDEX IF NOT EXISTS state_global_offset_idx ON durable_state (global_offset);

-- Berth's own tables.

-- Every migration of a socket's session between nodes, for GET /api/migrations.
CREATE TABLE IF NOT EXISTS berth_migration (
  id VARCHAR(64) PRIMARY KEY,
  socket_id VARCHAR(160) NOT NULL,
  shard_id VARCHAR(32) NOT NULL,
  cause VARCHAR(16) NOT NULL,
  from_node VARCHAR(255) NOT NULL,
  to_node VARCHAR(255),
  frames_per_second DOUBLE PRECISION,
  bytes_per_second DOUBLE PRECISION,
  started_at TIMESTAMP WITH TIME ZONE NOT NULL,
  completed_at TIMESTAMP WITH TIME ZONE,
  pause_ms BIGINT
);

CREATE INDEX IF NOT EXISTS berth_migration_started_idx ON berth_migration (started_at);
CREATE INDEX IF NOT EXISTS berth_migration_socket_idx ON berth_migration (socket_id, started_at);

-- When the socket's rate crossed the threshold (automatic migrations): crossing to serving.
ALTER TABLE berth_migration ADD COLUMN IF NOT EXISTS hot_since TIMESTAMP WITH TIME ZONE;

-- Function mappings: a named endpoint with receive criteria (JSON definition), versioned.
-- Deleted mappings keep a tombstone so that the built-in defaults are not re-created.
CREATE TABLE IF NOT EXISTS berth_mapping (
  name VARCHAR(64) PRIMARY KEY,
  version BIGINT NOT NULL,
  definition VARCHAR(65535) NOT NULL,
  deleted BOOLEAN DEFAULT FALSE NOT NULL,
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL
);

-- Batches an endpoint refused (4xx) or kept failing on, for operators to see and replay.
CREATE TABLE IF NOT EXISTS berth_parked (
  id VARCHAR(64) PRIMARY KEY,
  socket_id VARCHAR(160) NOT NULL,
  device_id VARCHAR(64) NOT NULL,
  mapping VARCHAR(64) NOT NULL,
  mapping_version BIGINT NOT NULL,
  endpoint VARCHAR(2048) NOT NULL,
  event VARCHAR(8) NOT NULL,
  batch_id VARCHAR(200) NOT NULL,
  seq_from BIGINT NOT NULL,
  seq_to BIGINT NOT NULL,
  data BYTEA,
  error VARCHAR(65535) NOT NULL,
  attempts INTEGER NOT NULL,
  parked_at TIMESTAMP WITH TIME ZONE NOT NULL,
  replayed_at TIMESTAMP WITH TIME ZONE
);

CREATE INDEX IF NOT EXISTS berth_parked_parked_idx ON berth_parked (parked_at);

-- Peer links between two sockets, for GET /api/links (the link entities are the truth).
CREATE TABLE IF NOT EXISTS berth_link (
  id VARCHAR(330) PRIMARY KEY,
  socket_a VARCHAR(160) NOT NULL,
  socket_b VARCHAR(160) NOT NULL,
  state VARCHAR(16) NOT NULL,
  waiter VARCHAR(160),
  reason VARCHAR(1000),
  since TIMESTAMP WITH TIME ZONE NOT NULL,
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL
);

CREATE INDEX IF NOT EXISTS berth_link_updated_idx ON berth_link (updated_at);

-- What became of a migration (requested, moving, waiting-for-traffic, completed, moved-idle,
-- not-moved), why when it is not obvious, when the shard reached its new node, and for a
-- drain how many shards and sockets it moved (docs/migration.md#the-record).
ALTER TABLE berth_migration ADD COLUMN IF NOT EXISTS status VARCHAR(24);
ALTER TABLE berth_migration ADD COLUMN IF NOT EXISTS note VARCHAR(1000);
ALTER TABLE berth_migration ADD COLUMN IF NOT EXISTS moved_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE berth_migration ADD COLUMN IF NOT EXISTS shards INTEGER;
ALTER TABLE berth_migration ADD COLUMN IF NOT EXISTS sockets INTEGER;
CREATE INDEX IF NOT EXISTS berth_migration_cause_idx ON berth_migration (cause, started_at);

-- Every socket's last state change, for GET /api/sockets (the socket entities are the truth;
-- docs/operator-api.md#listing-sockets). Ordered and paged by socket_id.
CREATE TABLE IF NOT EXISTS berth_socket (
  socket_id VARCHAR(160) PRIMARY KEY,
  shard_id VARCHAR(32) NOT NULL,
  device_id VARCHAR(64) NOT NULL,
  state VARCHAR(16) NOT NULL,
  mapping VARCHAR(64),
  edge_node VARCHAR(255),
  opened_at TIMESTAMP WITH TIME ZONE,
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
  seq_nr BIGINT NOT NULL DEFAULT 0
);

-- Writes are ordered by the socket's journal sequence number, not by the writing node's clock.
ALTER TABLE berth_socket ADD COLUMN IF NOT EXISTS seq_nr BIGINT NOT NULL DEFAULT 0;

CREATE INDEX IF NOT EXISTS berth_socket_state_idx ON berth_socket (state, socket_id);
CREATE INDEX IF NOT EXISTS berth_socket_device_idx ON berth_socket (device_id, socket_id);
CREATE INDEX IF NOT EXISTS berth_socket_shard_idx ON berth_socket (shard_id, socket_id);

-- Client certificates the edge refuses although their CA is trusted (docs/tls.md#deny-list), by
-- serial or SHA-256 fingerprint in lowercase hex (`hex`: VALUE is a reserved word in H2). Every
-- node reads it every berth.edge.tls.deny-list-poll-interval (DenyListStore).
CREATE TABLE IF NOT EXISTS berth_certificate_deny (
  kind VARCHAR(16) NOT NULL,
  hex VARCHAR(64) NOT NULL,
  reason VARCHAR(1000),
  added_at TIMESTAMP WITH TIME ZONE NOT NULL,
  PRIMARY KEY (kind, hex)
);

-- Operator API keys made through /api/keys (docs/operator-access.md#keys): the SHA-256 of each
-- key, never the key. Every node reads the table every berth.management.key-poll-interval.
CREATE TABLE IF NOT EXISTS berth_operator_key (
  id VARCHAR(32) PRIMARY KEY,
  role VARCHAR(16) NOT NULL,
  sha256 VARCHAR(64) NOT NULL,
  description VARCHAR(200),
  created_by VARCHAR(32),
  created_at TIMESTAMP WITH TIME ZONE NOT NULL
);

-- Every call that changes something, and every refused one, on the management port
-- (docs/operator-access.md#audit); listed by GET /api/audit, newest first.
CREATE TABLE IF NOT EXISTS berth_audit (
  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
  actor VARCHAR(32),
  role VARCHAR(16),
  method VARCHAR(16) NOT NULL,
  path VARCHAR(1000) NOT NULL,
  status INT NOT NULL,
  request_id VARCHAR(36) NOT NULL,
  remote VARCHAR(64),
  node VARCHAR(255)
);

-- Each running node's lease on serving sessions (docs/failover.md): a node renews its row every
-- second; one that stopped renewing (killed, paused, cut off from the database) and that the
-- cluster cannot reach is revoked and downed by the others at once, instead of after the split
-- brain resolver's timeouts. The journal refuses writes from a node whose row is revoked.
-- Rows are kept a day after they lapse, for the record.
CREATE TABLE IF NOT EXISTS berth_node_lease (
  node VARCHAR(300) PRIMARY KEY,
  started_at TIMESTAMP WITH TIME ZONE NOT NULL,
  valid_until TIMESTAMP WITH TIME ZONE NOT NULL,
  revoked_at TIMESTAMP WITH TIME ZONE,
  revoked_by VARCHAR(300),
  revoked_why VARCHAR(200)
);

-- The journal's fence (docs/failover.md): before each insert statement into the journal (a
-- node's COPY of a batch), the lease its session names in the setting berth.lease is checked and
-- kept locked against a revocation (FOR KEY SHARE, which a renewal does not wait for) until the
-- statement's transaction ends; a revoked or missing lease fails the statement with SQLSTATE
-- BL001. A session that names no lease (another client, a node before it holds one) is not
-- checked. In the insert's own statement: no round trip of its own.
CREATE OR REPLACE FUNCTION berth_journal_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  lease TEXT := current_setting('berth.lease', true);
  revoked TIMESTAMP WITH TIME ZONE;
BEGIN
  IF lease IS NULL OR lease = '' THEN
    RETURN NULL;
  END IF;
  -- The row lock lasts until the transaction ends: a client that leaves it open may not hold it
  -- for long (a batch's COPY commits on its own).
  PERFORM set_config('idle_in_transaction_session_timeout', '2000', true);
  SELECT revoked_at INTO revoked FROM berth_node_lease WHERE node = lease FOR KEY SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'this node''s lease % is gone: it was taken for dead', lease USING ERRCODE = 'BL001';
  END IF;
  IF revoked IS NOT NULL THEN
    RAISE EXCEPTION 'this node''s lease % was revoked at %: the cluster took it for dead, and its sessions live elsewhere now',
      lease, revoked USING ERRCODE = 'BL001';
  END IF;
  RETURN NULL;
END
$$;

-- Created only where it is missing: creating a trigger locks the journal against writes.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'berth_journal_fence'
      AND tgrelid = 'event_journal'::regclass) THEN
    CREATE TRIGGER berth_journal_fence BEFORE INSERT ON event_journal
      FOR EACH STATEMENT EXECUTE FUNCTION berth_journal_fence();
  END IF;
END
$$;
