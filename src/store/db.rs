//! The two places state can live, behind one small query layer: an embedded
//! SQLite file (the default) and a PostgreSQL server (shared by runners).
//!
//! Every query is written once, in SQLite's dialect with `?N` placeholders;
//! PostgreSQL gets the same text with `$N`. The few statements whose meaning
//! differs between the two (case-blind matching, JSON merging, `LIMIT`) say
//! so where they are written, with [`Sql::pg`].

use super::{Result, StoreError};
use std::collections::HashMap;

/// A statement: SQLite text, and PostgreSQL text when it differs by more
/// than its placeholders.
#[derive(Clone, Copy)]
pub struct Sql {
    pub lite: &'static str,
    pub pg: Option<&'static str>,
}

impl Sql {
    pub const fn same(text: &'static str) -> Sql {
        Sql {
            lite: text,
            pg: None,
        }
    }

    pub const fn pg(lite: &'static str, pg: &'static str) -> Sql {
        Sql { lite, pg: Some(pg) }
    }
}

/// A bound parameter.
#[derive(Debug, Clone, Copy)]
pub enum P<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
}

impl<'a> From<&'a str> for P<'a> {
    fn from(v: &'a str) -> Self {
        P::Text(Some(v))
    }
}
impl<'a> From<&'a String> for P<'a> {
    fn from(v: &'a String) -> Self {
        P::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for P<'a> {
    fn from(v: Option<&'a str>) -> Self {
        P::Text(v)
    }
}
impl<'a> From<&'a Option<String>> for P<'a> {
    fn from(v: &'a Option<String>) -> Self {
        P::Text(v.as_deref())
    }
}
impl From<i64> for P<'_> {
    fn from(v: i64) -> Self {
        P::Int(Some(v))
    }
}
impl From<Option<i64>> for P<'_> {
    fn from(v: Option<i64>) -> Self {
        P::Int(v)
    }
}

/// `p![a, b]`: parameters of any type [`P`] converts from.
macro_rules! p {
    ($($v:expr),* $(,)?) => { &[$($crate::store::db::P::from($v)),*] };
}
pub(crate) use p;

/// A value read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

/// One row, its columns by name.
#[derive(Debug, Clone)]
pub struct Row {
    names: std::sync::Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub fn new(names: std::sync::Arc<[String]>, values: Vec<Value>) -> Row {
        Row { names, values }
    }

    fn at(&self, name: &str) -> Result<&Value> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.values[i])
            .ok_or_else(|| StoreError(format!("no column {name} in the state database")))
    }

    pub fn text(&self, name: &str) -> Result<String> {
        self.opt_text(name)?
            .ok_or_else(|| StoreError(format!("column {name} is empty in the state database")))
    }

    pub fn opt_text(&self, name: &str) -> Result<Option<String>> {
        match self.at(name)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            Value::Int(i) => Ok(Some(i.to_string())),
        }
    }

    pub fn int(&self, name: &str) -> Result<i64> {
        self.opt_int(name)?
            .ok_or_else(|| StoreError(format!("column {name} is empty in the state database")))
    }

    pub fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        match self.at(name)? {
            Value::Null => Ok(None),
            Value::Int(i) => Ok(Some(*i)),
            Value::Text(s) => s
                .parse()
                .map(Some)
                .map_err(|_| StoreError(format!("column {name} holds {s:?}, not a number"))),
        }
    }
}

pub fn lite_param<'a>(p: &'a P<'a>) -> rusqlite::types::ToSqlOutput<'a> {
    use rusqlite::types::{ToSqlOutput, Value as V, ValueRef};
    match *p {
        P::Text(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        P::Text(None) | P::Int(None) => ToSqlOutput::Owned(V::Null),
        P::Int(Some(i)) => ToSqlOutput::Owned(V::Integer(i)),
    }
}

pub fn lite(e: rusqlite::Error) -> StoreError {
    StoreError(e.to_string())
}

/// `?N` placeholders as PostgreSQL's `$N` (outside string literals).
pub fn dollar_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// Texts translated for PostgreSQL, by their SQLite text's address.
#[derive(Default)]
pub struct Translated(HashMap<usize, String>);

impl Translated {
    pub fn get(&mut self, q: &Sql) -> &str {
        if let Some(pg) = q.pg {
            return pg;
        }
        self.0
            .entry(q.lite.as_ptr() as usize)
            .or_insert_with(|| dollar_placeholders(q.lite))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_outside_literals() {
        assert_eq!(
            dollar_placeholders("SELECT * FROM t WHERE a = ?1 AND b = '?' OR c = ?12"),
            "SELECT * FROM t WHERE a = $1 AND b = '?' OR c = $12"
        );
    }
}
