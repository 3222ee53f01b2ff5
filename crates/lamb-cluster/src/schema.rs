//! The cluster's own tables and the admission function in PostgreSQL,
//! applied at start under an advisory lock so that nodes starting together
//! do not race (every statement is idempotent besides).

use crate::db::DbError;

/// The key of the advisory lock the schema is applied under.
const SCHEMA_LOCK: i64 = 0x6c61_6d62_636c_0001;
/// The key of the transaction-scoped advisory lock every admission takes.
pub const ADMIT_LOCK: i64 = 0x6c61_6d62_636c_0002;

/// Tables (docs/cluster.md, "What lives where") and `lamb_cluster_admit`
/// (docs/cluster.md, "Cluster-wide concurrency, exactly").
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS lamb_cluster_nodes (
    node_id      text PRIMARY KEY,
    api_addr     text NOT NULL,
    cluster_addr text NOT NULL,
    capacity     integer NOT NULL,
    in_flight    integer NOT NULL DEFAULT 0,
    idle         jsonb NOT NULL DEFAULT '{}',
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE lamb_cluster_nodes ADD COLUMN IF NOT EXISTS registry_node text;
CREATE TABLE IF NOT EXISTS lamb_cluster_leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    epoch      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS lamb_cluster_usage (
    node_id   text NOT NULL,
    function  text NOT NULL,
    reserved  boolean NOT NULL,
    in_flight integer NOT NULL,
    PRIMARY KEY (node_id, function, reserved)
);
CREATE TABLE IF NOT EXISTS lamb_cluster_provisioned (
    function  text NOT NULL,
    qualifier text NOT NULL,
    node_id   text NOT NULL,
    count     integer NOT NULL,
    allocated integer NOT NULL DEFAULT 0,
    failure   text,
    PRIMARY KEY (function, qualifier, node_id)
);
CREATE OR REPLACE FUNCTION lamb_cluster_admit(
    p_node text, p_function text, p_limit integer, p_reserved integer,
    p_total_reserved bigint, p_dead_after double precision
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    of_function bigint;
    unreserved bigint;
BEGIN
    -- Every admission of the cluster, one after the other; the sums below
    -- are read after the lock, so they see every admission before this one.
    PERFORM pg_advisory_xact_lock(ADMIT_LOCK);
    SELECT coalesce(sum(u.in_flight), 0),
           coalesce(sum(u.in_flight) FILTER (WHERE u.function = p_function), 0),
           coalesce(sum(u.in_flight) FILTER (WHERE NOT u.reserved), 0)
      INTO total, of_function, unreserved
      FROM lamb_cluster_usage u JOIN lamb_cluster_nodes n USING (node_id)
     WHERE n.heartbeat_at > now() - make_interval(secs => p_dead_after);
    IF total >= p_limit THEN
        RETURN 'ConcurrentInvocationLimitExceeded';
    END IF;
    IF p_reserved IS NOT NULL THEN
        IF of_function >= p_reserved THEN
            RETURN 'ReservedFunctionConcurrentInvocationLimitExceeded';
        END IF;
    ELSIF unreserved >= p_limit - p_total_reserved THEN
        RETURN 'ConcurrentInvocationLimitExceeded';
    END IF;
    INSERT INTO lamb_cluster_usage AS u VALUES (p_node, p_function, p_reserved IS NOT NULL, 1)
        ON CONFLICT (node_id, function, reserved) DO UPDATE SET in_flight = u.in_flight + 1;
    RETURN NULL;
END
$$;
-- One statement per call's path: this node's pending releases written,
-- then (when p_function is given) one admission, in one transaction.
CREATE OR REPLACE FUNCTION lamb_cluster_release_admit(
    p_node text, p_release_functions text[], p_release_reserved boolean[], p_release_counts integer[],
    p_function text, p_limit integer, p_reserved integer,
    p_total_reserved bigint, p_dead_after double precision
) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lamb_cluster_usage u SET in_flight = greatest(u.in_flight - r.n, 0)
      FROM unnest(p_release_functions, p_release_reserved, p_release_counts) AS r(function, reserved, n)
     WHERE u.node_id = p_node AND u.function = r.function AND u.reserved = r.reserved;
    IF p_function IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN lamb_cluster_admit(p_node, p_function, p_limit, p_reserved, p_total_reserved, p_dead_after);
END
$$;
"#;

/// Creates or updates the cluster's tables and functions.
pub async fn apply(client: &tokio_postgres::Client) -> Result<(), DbError> {
    let sql = format!(
        "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {} COMMIT;",
        SCHEMA.replace("ADMIT_LOCK", &ADMIT_LOCK.to_string())
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(DbError::query("applying the cluster schema"))
}
