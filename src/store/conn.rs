//! One connection to the state, of either kind, used by one caller at a time.

use super::db::{lite, lite_param, Row, Sql, Value, P};
use super::Result;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A connection of either kind, used by one caller at a time.
pub enum Conn {
    Lite(Lite),
    Pg(Box<super::pg::PgConn>),
}

/// A SQLite connection, and the column names of each query it has run (by
/// the address of the query's text), so rows need not build them anew.
pub struct Lite {
    pub conn: rusqlite::Connection,
    names: HashMap<usize, Arc<[String]>>,
}

impl Lite {
    pub fn new(conn: rusqlite::Connection) -> Lite {
        Lite {
            conn,
            names: HashMap::new(),
        }
    }
}

fn text_value(t: &[u8]) -> Value {
    Value::Text(match std::str::from_utf8(t) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(t).into_owned(),
    })
}

impl Conn {
    pub fn exec(&mut self, q: &Sql, params: &[P]) -> Result<u64> {
        match self {
            Conn::Lite(c) => {
                let mut stmt = c.conn.prepare_cached(q.lite).map_err(lite)?;
                let n = stmt
                    .execute(rusqlite::params_from_iter(params.iter().map(lite_param)))
                    .map_err(lite)?;
                Ok(n as u64)
            }
            Conn::Pg(c) => c.exec(q, params),
        }
    }

    pub fn query(&mut self, q: &Sql, params: &[P]) -> Result<Vec<Row>> {
        self.query_up_to(q, params, usize::MAX)
    }

    /// The first row, if any (SQLite stops stepping there).
    pub fn query_opt(&mut self, q: &Sql, params: &[P]) -> Result<Option<Row>> {
        Ok(self.query_up_to(q, params, 1)?.into_iter().next())
    }

    fn query_up_to(&mut self, q: &Sql, params: &[P], most: usize) -> Result<Vec<Row>> {
        match self {
            Conn::Lite(c) => {
                let mut stmt = c.conn.prepare_cached(q.lite).map_err(lite)?;
                let names = c
                    .names
                    .entry(q.lite.as_ptr() as usize)
                    .or_insert_with(|| stmt.column_names().map(|s| s.to_string()).collect())
                    .clone();
                let width = names.len();
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(params.iter().map(lite_param)))
                    .map_err(lite)?;
                let mut out = Vec::new();
                while out.len() < most {
                    let Some(r) = rows.next().map_err(lite)? else {
                        break;
                    };
                    let mut values = Vec::with_capacity(width);
                    for i in 0..width {
                        values.push(match r.get_ref(i).map_err(lite)? {
                            rusqlite::types::ValueRef::Null => Value::Null,
                            rusqlite::types::ValueRef::Integer(i) => Value::Int(i),
                            rusqlite::types::ValueRef::Real(f) => Value::Text(f.to_string()),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => text_value(t),
                        });
                    }
                    out.push(Row::new(names.clone(), values));
                }
                Ok(out)
            }
            Conn::Pg(c) => c.query(q, params),
        }
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
            Conn::Lite(c) => c.conn.execute_batch(text).map_err(lite),
            Conn::Pg(c) => c.batch(text),
        }
    }

    /// Inserts one row and returns its `id` (SQLite's rowid; `RETURNING id`
    /// on PostgreSQL, which `pg` must say).
    pub fn insert_id(&mut self, q: &Sql, params: &[P]) -> Result<i64> {
        if let Conn::Lite(_) = self {
            self.exec(q, params)?;
            if let Conn::Lite(c) = self {
                return Ok(c.conn.last_insert_rowid());
            }
        }
        self.query_opt(q, params)?
            .ok_or_else(|| super::StoreError("the insert returned no id".into()))?
            .int("id")
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Conn::Pg(_))
    }
}

/// Connections behind mutexes: one for SQLite (which has one writer anyway);
/// for PostgreSQL a primary one, which holds the session's advisory locks,
/// and up to [`POOL`] in all, opened as workers find them busy, so that
/// statements of parallel workers do not queue behind one another.
pub struct Shared {
    slots: Vec<Mutex<Option<Conn>>>,
    open: Option<Opener>,
    /// Set when opening another connection failed: make do with those open.
    no_more: AtomicBool,
    next: AtomicUsize,
}

type Opener = Box<dyn Fn() -> Result<Conn> + Send + Sync>;

/// Connections to a PostgreSQL server per process, at most.
pub const POOL: usize = 4;

/// A connection taken from [`Shared`].
pub struct ConnGuard<'a>(MutexGuard<'a, Option<Conn>>);

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.0.as_ref().expect("a taken slot holds a connection")
    }
}

impl std::ops::DerefMut for ConnGuard<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.0.as_mut().expect("a taken slot holds a connection")
    }
}

impl Shared {
    pub fn new(conn: Conn) -> Shared {
        Shared {
            slots: vec![Mutex::new(Some(conn))],
            open: None,
            no_more: AtomicBool::new(true),
            next: AtomicUsize::new(0),
        }
    }

    /// A pool whose first connection is `primary`; `open` makes the others.
    pub fn pool(primary: Conn, open: Opener) -> Shared {
        let mut slots = vec![Mutex::new(Some(primary))];
        slots.extend((1..POOL).map(|_| Mutex::new(None)));
        Shared {
            slots,
            open: Some(open),
            no_more: AtomicBool::new(false),
            next: AtomicUsize::new(0),
        }
    }

    /// The primary connection: the one whose session holds the locks.
    pub fn primary(&self) -> ConnGuard<'_> {
        ConnGuard(self.slots[0].lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Any connection: a free one, a new one while the pool may grow, else
    /// the next one in turn, once it is free.
    pub fn lock(&self) -> ConnGuard<'_> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let slot = &self.slots[(start + i) % n];
            let mut guard = match slot.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => continue,
            };
            if guard.is_some() {
                return ConnGuard(guard);
            }
            if self.no_more.load(Ordering::Relaxed) {
                continue;
            }
            match self.open.as_ref().map(|open| open()) {
                Some(Ok(conn)) => {
                    *guard = Some(conn);
                    return ConnGuard(guard);
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e.0, "cannot open another state connection; using those open");
                    self.no_more.store(true, Ordering::Relaxed);
                }
                None => {}
            }
        }
        // All busy: wait for one that is open.
        for i in 0..n {
            let slot = &self.slots[(start + i) % n];
            let guard = slot.lock().unwrap_or_else(|e| e.into_inner());
            if guard.is_some() {
                return ConnGuard(guard);
            }
        }
        self.primary()
    }
}
