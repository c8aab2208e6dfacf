//! One connection to the state, of either kind, used by one caller at a time.

use super::db::{lite, lite_param, Row, Sql, Value, P};
use super::Result;
use std::sync::{Mutex, MutexGuard};

/// A connection of either kind, used by one caller at a time.
pub enum Conn {
    Lite(rusqlite::Connection),
    Pg(Box<super::pg::PgConn>),
}

impl Conn {
    pub fn exec(&mut self, q: &Sql, params: &[P]) -> Result<u64> {
        match self {
            Conn::Lite(c) => {
                let mut stmt = c.prepare_cached(q.lite).map_err(lite)?;
                let n = stmt
                    .execute(rusqlite::params_from_iter(params.iter().map(lite_param)))
                    .map_err(lite)?;
                Ok(n as u64)
            }
            Conn::Pg(c) => c.exec(q, params),
        }
    }

    pub fn query(&mut self, q: &Sql, params: &[P]) -> Result<Vec<Row>> {
        match self {
            Conn::Lite(c) => {
                let mut stmt = c.prepare_cached(q.lite).map_err(lite)?;
                let names: std::sync::Arc<[String]> =
                    stmt.column_names().map(|s| s.to_string()).collect();
                let width = names.len();
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(params.iter().map(lite_param)))
                    .map_err(lite)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(lite)? {
                    let mut values = Vec::with_capacity(width);
                    for i in 0..width {
                        values.push(match r.get_ref(i).map_err(lite)? {
                            rusqlite::types::ValueRef::Null => Value::Null,
                            rusqlite::types::ValueRef::Integer(i) => Value::Int(i),
                            rusqlite::types::ValueRef::Real(f) => Value::Text(f.to_string()),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                Value::Text(String::from_utf8_lossy(t).into_owned())
                            }
                        });
                    }
                    out.push(Row::new(names.clone(), values));
                }
                Ok(out)
            }
            Conn::Pg(c) => c.query(q, params),
        }
    }

    pub fn query_opt(&mut self, q: &Sql, params: &[P]) -> Result<Option<Row>> {
        Ok(self.query(q, params)?.into_iter().next())
    }

    /// Runs `f` in one transaction: all of it, or none.
    pub fn transaction<T>(&mut self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        self.batch("BEGIN")?;
        match f(self) {
            Ok(v) => {
                if let Err(e) = self.batch("COMMIT") {
                    let _ = self.batch("ROLLBACK");
                    return Err(e);
                }
                Ok(v)
            }
            Err(e) => {
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    pub fn batch(&mut self, text: &str) -> Result<()> {
        match self {
            Conn::Lite(c) => c.execute_batch(text).map_err(lite),
            Conn::Pg(c) => c.batch(text),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Conn::Pg(_))
    }
}

/// The connection behind a mutex.
pub struct Shared {
    conn: Mutex<Conn>,
}

impl Shared {
    pub fn new(conn: Conn) -> Shared {
        Shared {
            conn: Mutex::new(conn),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}
