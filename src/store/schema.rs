//! Versioned schema migrations, tracked in `PRAGMA user_version`.

use super::{sql, Result, StoreError};
use rusqlite::{Connection, TransactionBehavior};

/// Migration N brings the schema from version N to N+1. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: inventory, token journal, audit log.
    r#"
    CREATE TABLE inventory (
        username   TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
        owner      TEXT,
        purpose    TEXT,
        tags       TEXT NOT NULL DEFAULT '[]',
        extra      TEXT NOT NULL DEFAULT '{}',
        source     TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen  TEXT NOT NULL
    );
    CREATE TABLE token_journal (
        id           INTEGER PRIMARY KEY,
        username     TEXT NOT NULL COLLATE NOCASE,
        token_id     TEXT NOT NULL UNIQUE,
        name         TEXT,
        token_type   TEXT,
        expire_at    TEXT,
        fingerprint  TEXT NOT NULL,
        minted_at    TEXT NOT NULL,
        delivered_at TEXT,
        verified_at  TEXT,
        revoked_at   TEXT,
        sink         TEXT
    );
    CREATE INDEX token_journal_fingerprint ON token_journal (fingerprint);
    CREATE INDEX token_journal_username ON token_journal (username);
    CREATE TABLE audit (
        id        INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        profile   TEXT,
        api       TEXT,
        operation TEXT NOT NULL,
        target    TEXT NOT NULL COLLATE NOCASE,
        outcome   TEXT NOT NULL,
        status    INTEGER,
        detail    TEXT
    );
    CREATE INDEX audit_target ON audit (target);
    CREATE INDEX audit_at ON audit (at);
    "#,
    // 2: runs and token-create attempts, so that a run that dies while a token
    // create is in flight (or before delivering what it minted) leaves a record
    // that the next run resolves.
    r#"
    ALTER TABLE token_journal ADD COLUMN run_id TEXT;
    ALTER TABLE token_journal ADD COLUMN revealed_at TEXT;
    CREATE INDEX token_journal_run ON token_journal (run_id);
    CREATE TABLE runs (
        run_id     TEXT NOT NULL PRIMARY KEY,
        pid        INTEGER NOT NULL,
        script     TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at   TEXT,
        note       TEXT
    );
    CREATE INDEX runs_open ON runs (ended_at);
    CREATE TABLE token_attempts (
        id          INTEGER PRIMARY KEY,
        run_id      TEXT NOT NULL,
        username    TEXT NOT NULL COLLATE NOCASE,
        name        TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        token_id    TEXT,
        resolved_at TEXT,
        outcome     TEXT
    );
    CREATE INDEX token_attempts_run ON token_attempts (run_id);
    "#,
    // 3: which account and token group each sink target belongs to, so that
    // no delivery overwrites another group's live token.
    r#"
    CREATE TABLE deliveries (
        target    TEXT NOT NULL PRIMARY KEY,
        username  TEXT NOT NULL COLLATE NOCASE,
        grp       TEXT NOT NULL,
        token_id  TEXT NOT NULL,
        at        TEXT NOT NULL
    );
    "#,
    // 4: token ids are looked up case-blind (revocations, `journal_get`) and
    // deliveries by token: indexes, so a journal years long stays fast.
    r#"
    CREATE INDEX token_journal_token_id_nocase ON token_journal (token_id COLLATE NOCASE);
    CREATE INDEX deliveries_token ON deliveries (token_id);
    "#,
    // 5: where a delivery was going when it was announced (and from which
    // machine: a file is that machine's), so that one cut short by a dead
    // run can be checked at its target, and two runs never deliver to one
    // target at once (looked up at every delivery).
    r#"
    ALTER TABLE token_journal ADD COLUMN delivering_to TEXT;
    ALTER TABLE token_journal ADD COLUMN delivering_host TEXT;
    CREATE INDEX token_journal_delivering_to ON token_journal (delivering_to);
    "#,
    // 6: which organization a run worked on (the API's base URL, and a
    // keyed fingerprint of the admin token): what a dead run left is settled
    // only there. Another organization answers "not found" for the dead
    // run's tokens, and they would count as revoked while they live on where
    // they were minted. And the place written whole that an announced
    // delivery's target is part of (an AWS secret): two runs writing fields
    // of it take turns.
    r#"
    ALTER TABLE runs ADD COLUMN api TEXT;
    ALTER TABLE runs ADD COLUMN admin TEXT;
    ALTER TABLE token_journal ADD COLUMN delivering_shared TEXT;
    CREATE INDEX token_journal_delivering_shared ON token_journal (delivering_shared)
        WHERE delivering_shared IS NOT NULL;
    "#,
];

const _: () = assert!(MIGRATIONS.len() == PG_MIGRATIONS.len());

pub fn migrate(conn: &mut Connection) -> Result<()> {
    // IMMEDIATE takes the write lock up front, so two first runs cannot both migrate.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let version: usize = tx
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(sql)? as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError(format!(
            "the state database has schema version {version}, newer than this mdops understands ({}); upgrade mdops",
            MIGRATIONS.len()
        )));
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(step).map_err(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(sql)?;
    }
    tx.commit().map_err(sql)
}

/// The same tables on PostgreSQL. Version N here is version N of
/// [`MIGRATIONS`]: a change appends a step to both lists. Usernames are
/// `citext` (case-blind, as SQLite's `NOCASE`).
const PG_MIGRATIONS: &[&str] = &[
    // 1: inventory, token journal, audit log, and the settings both backends
    // keep elsewhere (the journal key; run-lock holders).
    r#"
    CREATE EXTENSION IF NOT EXISTS citext;
    CREATE TABLE inventory (
        username   CITEXT NOT NULL PRIMARY KEY,
        owner      TEXT,
        purpose    TEXT,
        tags       TEXT NOT NULL DEFAULT '[]',
        extra      TEXT NOT NULL DEFAULT '{}',
        source     TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen  TEXT NOT NULL
    );
    CREATE TABLE token_journal (
        id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        username     CITEXT NOT NULL,
        token_id     TEXT NOT NULL UNIQUE,
        name         TEXT,
        token_type   TEXT,
        expire_at    TEXT,
        fingerprint  TEXT NOT NULL,
        minted_at    TEXT NOT NULL,
        delivered_at TEXT,
        verified_at  TEXT,
        revoked_at   TEXT,
        sink         TEXT
    );
    CREATE INDEX token_journal_fingerprint ON token_journal (fingerprint);
    CREATE INDEX token_journal_username ON token_journal (username);
    CREATE TABLE audit (
        id        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        at        TEXT NOT NULL,
        profile   TEXT,
        api       TEXT,
        operation TEXT NOT NULL,
        target    CITEXT NOT NULL,
        outcome   TEXT NOT NULL,
        status    BIGINT,
        detail    TEXT
    );
    CREATE INDEX audit_target ON audit (target);
    CREATE INDEX audit_at ON audit (at);
    CREATE TABLE mdops_settings (
        name  TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE run_locks (
        lock_key TEXT NOT NULL PRIMARY KEY,
        holder   TEXT NOT NULL,
        at       TEXT NOT NULL
    );
    -- SQLite's json_patch: a JSON merge patch (RFC 7396).
    CREATE FUNCTION mdops_json_patch(target jsonb, patch jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE AS $$
    DECLARE
        k text;
        v jsonb;
        result jsonb;
    BEGIN
        IF jsonb_typeof(patch) IS DISTINCT FROM 'object' THEN
            RETURN patch;
        END IF;
        IF jsonb_typeof(target) IS DISTINCT FROM 'object' THEN
            result := '{}'::jsonb;
        ELSE
            result := target;
        END IF;
        FOR k, v IN SELECT * FROM jsonb_each(patch) LOOP
            IF jsonb_typeof(v) = 'null' THEN
                result := result - k;
            ELSE
                result := jsonb_set(result, ARRAY[k], mdops_json_patch(result -> k, v));
            END IF;
        END LOOP;
        RETURN result;
    END
    $$;
    "#,
    // 2: runs and token-create attempts.
    r#"
    ALTER TABLE token_journal ADD COLUMN run_id TEXT;
    ALTER TABLE token_journal ADD COLUMN revealed_at TEXT;
    CREATE INDEX token_journal_run ON token_journal (run_id);
    CREATE TABLE runs (
        run_id     TEXT NOT NULL PRIMARY KEY,
        pid        BIGINT NOT NULL,
        script     TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at   TEXT,
        note       TEXT
    );
    CREATE INDEX runs_open ON runs (ended_at);
    CREATE TABLE token_attempts (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        run_id      TEXT NOT NULL,
        username    CITEXT NOT NULL,
        name        TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        token_id    TEXT,
        resolved_at TEXT,
        outcome     TEXT
    );
    CREATE INDEX token_attempts_run ON token_attempts (run_id);
    "#,
    // 3: deliveries.
    r#"
    CREATE TABLE deliveries (
        target    TEXT NOT NULL PRIMARY KEY,
        username  CITEXT NOT NULL,
        grp       TEXT NOT NULL,
        token_id  TEXT NOT NULL,
        at        TEXT NOT NULL
    );
    "#,
    // 4: indexes for case-blind token ids and deliveries by token.
    r#"
    CREATE INDEX token_journal_token_id_lower ON token_journal (lower(token_id));
    CREATE INDEX deliveries_token ON deliveries (token_id);
    "#,
    // 5: where an announced delivery was going.
    r#"
    ALTER TABLE token_journal ADD COLUMN delivering_to TEXT;
    ALTER TABLE token_journal ADD COLUMN delivering_host TEXT;
    CREATE INDEX token_journal_delivering_to ON token_journal (delivering_to);
    "#,
    // 6: which organization a run worked on; the place a delivery shares.
    r#"
    ALTER TABLE runs ADD COLUMN api TEXT;
    ALTER TABLE runs ADD COLUMN admin TEXT;
    ALTER TABLE token_journal ADD COLUMN delivering_shared TEXT;
    CREATE INDEX token_journal_delivering_shared ON token_journal (delivering_shared)
        WHERE delivering_shared IS NOT NULL;
    "#,
];

/// Migrates a PostgreSQL database. Two runners that start at once queue on a
/// transaction-level advisory lock, so exactly one applies each step.
pub fn migrate_pg(conn: &mut super::conn::Conn) -> Result<()> {
    use super::db::{Sql, P};
    // Up to date: nothing to lock or create, so a role that may only read and
    // write rows (no CREATE on the schema) can use a database set up for it.
    let present = conn
        .query_opt(
            &Sql::same("SELECT to_regclass('mdops_schema') IS NOT NULL AS present"),
            &[],
        )?
        .map(|r| r.int("present"))
        .transpose()?
        == Some(1);
    if present {
        let version = conn
            .query_opt(
                &Sql::same("SELECT COALESCE(MAX(version), 0) AS version FROM mdops_schema"),
                &[],
            )?
            .map(|r| r.int("version"))
            .transpose()?
            .unwrap_or(0) as usize;
        if version == PG_MIGRATIONS.len() {
            return Ok(());
        }
    }
    conn.transaction(|c| {
        c.query(
            &Sql::same("SELECT pg_advisory_xact_lock(?1)::text AS locked"),
            &[P::Int(Some(super::pg::lock_key("schema", "migrate")))],
        )?;
        c.batch("CREATE TABLE IF NOT EXISTS mdops_schema (version BIGINT NOT NULL)")?;
        let version = c
            .query_opt(
                &Sql::same("SELECT COALESCE(MAX(version), 0) AS version FROM mdops_schema"),
                &[],
            )?
            .map(|r| r.int("version"))
            .transpose()?
            .unwrap_or(0) as usize;
        if version > PG_MIGRATIONS.len() {
            return Err(StoreError(format!(
                "the state database has schema version {version}, newer than this mdops understands ({}); upgrade mdops",
                PG_MIGRATIONS.len()
            )));
        }
        for (i, step) in PG_MIGRATIONS.iter().enumerate().skip(version) {
            c.batch(step).map_err(|e| {
                if e.0.contains("citext") {
                    StoreError(format!(
                        "{}; mdops needs the citext extension: ask the database owner to run CREATE EXTENSION citext",
                        e.0
                    ))
                } else {
                    e
                }
            })?;
            c.batch("DELETE FROM mdops_schema")?;
            c.exec(
                &Sql::same("INSERT INTO mdops_schema (version) VALUES (?1)"),
                &[P::Int(Some(i as i64 + 1))],
            )?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        migrate(&mut c).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        c.pragma_update(None, "user_version", 99).unwrap();
        assert!(migrate(&mut c)
            .unwrap_err()
            .0
            .contains("newer than this mdops"));
    }
}
