//! A delivery's announcement: before a sink is written, the journal records
//! where the token is going (and from which machine), refusing while another
//! run's token is there; a failed write takes it back; a run that died
//! mid-delivery leaves announcements the next run checks at their targets.

use super::db::{p, Sql};
use super::journal::{rows, JournalEntry};
use super::{now, Result, Store};

impl Store {
    /// Tokens of a run whose delivery was announced and never confirmed (nor
    /// revealed or revoked since): the run died while the sink was written.
    pub fn journal_interrupted(&self, run_id: &str) -> Result<Vec<JournalEntry>> {
        rows(self.conn().query(
            &Sql::same(
                "SELECT * FROM token_journal WHERE run_id = ?1 AND delivered_at IS NOT NULL
                   AND sink IS NULL AND revealed_at IS NULL AND revoked_at IS NULL ORDER BY id",
            ),
            p![run_id],
        )?)
    }

    /// A delivery cut short whose target cannot be read back: kept as
    /// delivered (it may be there), with `note` where the sink goes.
    pub fn journal_unconfirmed(&self, fingerprint: &str, note: &str) -> Result<()> {
        self.conn().exec(
            &Sql::same(
                "UPDATE token_journal SET sink = ?2 WHERE fingerprint = ?1 AND sink IS NULL",
            ),
            p![fingerprint, note],
        )?;
        Ok(())
    }

    /// Records, before a sink is written, that the token is being delivered:
    /// a run killed while the write is in flight (a store's answer pending)
    /// leaves a token that may be in its target, so the next run must treat
    /// it as delivered, to be replaced by a verified successor, never revoke
    /// it as one nobody received. Durable, as a power loss mid-write is a
    /// run killed mid-write too.
    ///
    /// `target` (its id) is kept, with this machine's name, for a run that
    /// finds the delivery cut short (see [`Store::journal_interrupted`]).
    ///
    /// Refused (nothing recorded) when another run's token is at `target`
    /// (the last delivered there) or on its way there, and that run is still
    /// open or minted it after `run_id` began: writing over it would leave
    /// it live with nobody holding it. (A file or env file of another
    /// machine is another file.) Returns that token then: `(token id,
    /// account, run id)`. The check and the record are one step: on
    /// PostgreSQL under a lock on the target, on SQLite in one write.
    ///
    /// `shared`: a place the target is part of, written whole (an AWS
    /// secret, of which the target is one field): another open run's token
    /// on its way to any part of it counts too (a run that has ended wrote
    /// its part, which the next read of the whole keeps).
    pub fn journal_delivering(
        &self,
        fingerprint: &str,
        target: &str,
        run_id: &str,
        shared: Option<&str>,
    ) -> Result<Option<(String, String, String)>> {
        // Another run's token at the target, or on its way there (or to
        // another part of the place it shares).
        macro_rules! others {
            ($fp:literal, $target:literal, $run:literal, $host:literal, $shared:literal) => {
                concat!(
                    "SELECT token_id, username, run_id FROM token_journal o
                     WHERE (o.delivering_to = ", $target, "
                            OR o.token_id = (SELECT d.token_id FROM deliveries d WHERE d.target = ", $target, ")
                            OR o.delivering_shared = CAST(", $shared, " AS TEXT)
                               AND o.run_id IN (SELECT run_id FROM runs WHERE ended_at IS NULL))
                       AND o.fingerprint <> ", $fp, " AND o.revoked_at IS NULL AND o.run_id <> ", $run, "
                       AND (", $target, " NOT LIKE 'file:%' AND ", $target, " NOT LIKE 'env-file:%'
                            OR o.delivering_host IS NULL OR o.delivering_host = ", $host, ")
                       AND (o.run_id IN (SELECT run_id FROM runs WHERE ended_at IS NULL)
                            OR o.minted_at >= (SELECT started_at FROM runs WHERE run_id = ", $run, "))"
                )
            };
        }
        const ANNOUNCE: Sql = Sql::same(concat!(
            "UPDATE token_journal SET delivered_at = COALESCE(delivered_at, ?5),
                delivering_to = ?2, delivering_host = ?4, delivering_shared = ?6
             WHERE fingerprint = ?1 AND NOT EXISTS (",
            others!("?1", "?2", "?3", "?4", "?6"),
            ")"
        ));
        const HOLDER: Sql = Sql::same(concat!(others!("?1", "?2", "?3", "?4", "?5"), " LIMIT 1"));
        let host = super::host_name();
        let holder = self.conn().transaction(|c| {
            if c.is_postgres() {
                // Each statement sees what committed before it (the default,
                // but a server may default to a snapshot per transaction,
                // which would miss an announcement made while the lock was
                // waited for).
                c.batch("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")?;
                c.query(
                    &Sql::same("SELECT pg_advisory_xact_lock(?1)::text AS locked"),
                    &[super::db::P::Int(Some(super::pg::lock_key(
                        "target",
                        shared.unwrap_or(target),
                    )))],
                )?;
            }
            if c.exec(
                &ANNOUNCE,
                p![fingerprint, target, run_id, host, &now(), shared],
            )? > 0
            {
                return Ok(None);
            }
            c.query_opt(&HOLDER, p![fingerprint, target, run_id, host, shared])?
                .map(|r| Ok((r.text("token_id")?, r.text("username")?, r.text("run_id")?)))
                .transpose()
        })?;
        if holder.is_some() {
            return Ok(holder);
        }
        self.durable().inspect_err(|_| {
            // Nothing is written then: the announcement is taken back.
            let _ = self.journal_not_delivered(fingerprint, target);
        })?;
        Ok(None)
    }

    /// The delivery to `target` announced by [`Store::journal_delivering`]
    /// failed: the announcement is taken back (and the token counts as
    /// delivered no more, if it was delivered nowhere before).
    pub fn journal_not_delivered(&self, fingerprint: &str, target: &str) -> Result<()> {
        self.conn().exec(
            &Sql::same(
                "UPDATE token_journal SET
                    delivered_at = CASE WHEN sink IS NULL THEN NULL ELSE delivered_at END,
                    delivering_to = NULL, delivering_host = NULL, delivering_shared = NULL
                 WHERE fingerprint = ?1 AND delivering_to = ?2",
            ),
            p![fingerprint, target],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Org, Store};
    use crate::api::SecretString;

    /// Journals token `id` as minted by open run `run`; returns its fingerprint.
    fn minted(s: &Store, run: &str, id: &str) -> String {
        s.run_begin(run, 1, "x.rhai", &Org::default()).unwrap();
        let token: crate::api::Token = serde_json::from_value(serde_json::json!({
            "id": id, "name": "app.g1", "created_ts": "2026-01-01T00:00:00Z",
            "read_only": false, "token_type": "read_write"
        }))
        .unwrap();
        let fp = s.fingerprint(&SecretString::new(format!("secret-of-{id}")));
        s.journal_minted(run, None, "tenant_a", &token, &fp, None)
            .unwrap();
        fp
    }

    /// Another open run's token on its way to one field of a secret written
    /// whole keeps every other field of it (and the whole) off; another
    /// secret, even one whose name begins the same, is another place.
    #[test]
    fn a_place_written_whole_is_one_target_for_every_part_of_it() {
        let s = Store::in_memory().unwrap();
        let secret = "aws:http://aws@us-east-1/md/s";
        let first = minted(&s, "r1", "t-1");
        let part = |f: &str| format!("{secret}#{f}");
        assert_eq!(
            s.journal_delivering(&first, &part("a"), "r1", Some(secret))
                .unwrap(),
            None
        );
        let fp = minted(&s, "r2", "t-2");
        for (target, shared) in [(part("b"), secret), (secret.to_string(), secret)] {
            let holder = s
                .journal_delivering(&fp, &target, "r2", Some(shared))
                .unwrap();
            assert_eq!(holder.map(|h| h.0).as_deref(), Some("t-1"), "{target}");
        }
        // Once the other run has ended, its part is written: the next read of
        // the whole keeps it.
        s.run_end("r1", None).unwrap();
        assert_eq!(
            s.journal_delivering(&fp, &part("b"), "r2", Some(secret))
                .unwrap(),
            None
        );
        let other = "aws:http://aws@us-east-1/md/sx";
        assert_eq!(
            s.journal_delivering(&fp, &format!("{other}#b"), "r2", Some(other))
                .unwrap(),
            None
        );
    }
}
