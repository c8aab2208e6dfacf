//! State on a PostgreSQL server: the connection (URL, password sources, TLS),
//! statements prepared once per connection, and session-level advisory locks.
//!
//! One connection per process, never re-opened behind the caller's back: the
//! run's locks live on it, so a lost connection must stop the run's writes,
//! not quietly continue without the locks.

use super::db::{Row, Sql, Translated, Value, P};
use super::{Result, StoreError};
use postgres::types::{IsNull, ToSql, Type};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::pg_url::StateUrl;

pub struct PgConn {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
    texts: Translated,
    /// `host:port/database`, for messages.
    pub place: String,
    /// Set once a connection of the process is lost: the state stays lost
    /// (the run's locks may have gone with it), and every later statement on
    /// any connection fails at once with this message.
    lost: Arc<OnceLock<String>>,
}

impl ToSql for P<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            P::Text(v) => v.to_sql(ty, out),
            P::Int(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <Option<&str> as ToSql>::accepts(ty) || <Option<i64> as ToSql>::accepts(ty)
    }

    postgres::types::to_sql_checked!();
}

impl PgConn {
    /// Connects; the error names host, port and database, never the password.
    pub fn connect(url: &StateUrl, lost: Arc<OnceLock<String>>) -> Result<PgConn> {
        let place = url.place();
        let refused = |why: String| {
            StoreError(format!(
                "cannot connect to the state database {place}: {}",
                crate::redact::cleaned(&why)
            ))
        };
        let config = url.config()?;
        let client = if url.tls() {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(url.tls_config()?);
            config.connect(tls)
        } else {
            config.connect(postgres::NoTls)
        }
        .map_err(|e| refused(reason(&e)))?;
        Ok(PgConn {
            client,
            statements: HashMap::new(),
            texts: Translated::default(),
            place,
            lost,
        })
    }

    fn statement(&mut self, q: &Sql) -> Result<postgres::Statement> {
        if let Some(lost) = self.lost.get() {
            return Err(StoreError(lost.clone()));
        }
        let text = self.texts.get(q).to_string();
        if let Some(s) = self.statements.get(&text) {
            return Ok(s.clone());
        }
        let s = match self.client.prepare(&text) {
            Ok(s) => s,
            Err(e) => return Err(self.error(&e)),
        };
        self.statements.insert(text, s.clone());
        Ok(s)
    }

    pub fn exec(&mut self, q: &Sql, params: &[P]) -> Result<u64> {
        let s = self.statement(q)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let done = self.client.execute(&s, &refs);
        done.map_err(|e| self.error(&e))
    }

    pub fn query(&mut self, q: &Sql, params: &[P]) -> Result<Vec<Row>> {
        let s = self.statement(q)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let done = self.client.query(&s, &refs);
        let rows = done.map_err(|e| self.error(&e))?;
        let names: std::sync::Arc<[String]> =
            s.columns().iter().map(|c| c.name().to_string()).collect();
        rows.iter()
            .map(|r| {
                let values = s
                    .columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| read_value(r, i, c.type_()))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Row::new(names.clone(), values))
            })
            .collect()
    }

    pub fn batch(&mut self, text: &str) -> Result<()> {
        if let Some(lost) = self.lost.get() {
            return Err(StoreError(lost.clone()));
        }
        let done = self.client.batch_execute(text);
        done.map_err(|e| self.error(&e))
    }

    /// Whether the server still answers: one round trip, before each API
    /// write, so that no write is sent whose record could not be kept.
    pub fn ping(&mut self) -> Result<()> {
        self.batch("SELECT 1")
    }

    fn error(&mut self, e: &postgres::Error) -> StoreError {
        let gone = self.client.is_closed()
            || e.is_closed()
            || e.as_db_error().is_some_and(|d| {
                d.code().code().starts_with("57P") // admin_shutdown, crash_shutdown, ...
            })
            || e.as_db_error().is_none() && e.to_string().contains("connection");
        if gone {
            let message = format!(
                "the connection to the state database {} was lost ({}): no more writes are sent in this run, since none could be recorded and its locks went with the connection",
                self.place,
                reason(e)
            );
            let _ = self.lost.set(message);
            return StoreError(self.lost.get().cloned().unwrap_or_default());
        }
        StoreError(format!("state database {}: {}", self.place, reason(e)))
    }

    /// Takes a session-level advisory lock if it is free; `false` if another
    /// session holds it. Released by [`PgConn::unlock`] or when the
    /// connection ends, however the process ends.
    pub fn try_lock(&mut self, key: i64) -> Result<bool> {
        let rows = self.query(
            &Sql::same("SELECT pg_try_advisory_lock(?1) AS taken"),
            &[P::Int(Some(key))],
        )?;
        Ok(matches!(rows.first().map(|r| r.int("taken")), Some(Ok(1))))
    }

    pub fn unlock(&mut self, key: i64) -> Result<()> {
        self.query(
            &Sql::same("SELECT pg_advisory_unlock(?1) AS released"),
            &[P::Int(Some(key))],
        )?;
        Ok(())
    }
}

fn read_value(r: &postgres::Row, i: usize, ty: &Type) -> Result<Value> {
    let bad = |e: postgres::Error| StoreError(format!("state database: {e}"));
    Ok(match *ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i).map_err(bad)?.map(Value::Int),
        Type::INT4 => r
            .try_get::<_, Option<i32>>(i)
            .map_err(bad)?
            .map(|v| Value::Int(v.into())),
        Type::INT2 => r
            .try_get::<_, Option<i16>>(i)
            .map_err(bad)?
            .map(|v| Value::Int(v.into())),
        Type::BOOL => r
            .try_get::<_, Option<bool>>(i)
            .map_err(bad)?
            .map(|v| Value::Int(v.into())),
        _ => r
            .try_get::<_, Option<String>>(i)
            .map_err(bad)?
            .map(Value::Text),
    }
    .unwrap_or(Value::Null))
}

/// What went wrong, with the server's own message for database errors.
pub fn reason(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    crate::redact::with_causes(e)
}

/// The advisory-lock key of a name: the first 8 bytes of its SHA-256.
pub fn lock_key(kind: &str, name: &str) -> i64 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(format!("mdops {kind}: {name}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_by_kind_and_name() {
        assert_ne!(lock_key("run", "a"), lock_key("script", "a"));
        assert_ne!(lock_key("run", "a"), lock_key("run", "b"));
        assert_eq!(lock_key("run", "a"), lock_key("run", "a"));
    }
}
