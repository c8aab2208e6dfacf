//! Declared parameters: a script says once what it takes,
//!
//! ```rhai
//! let p = params(#{
//!     accounts:   #{type: "accounts", required: true, doc: "which accounts: a,b, tenant_* or all"},
//!     older_than: #{type: "duration", default_value: "90d", doc: "rotate tokens at least this old"},
//! });
//! ```
//!
//! and before anything runs, mdops checks the `--arg`s against it: an
//! unknown one (with the closest declared name), a missing required one, a
//! value of the wrong type or out of range are each a usage error (exit 2),
//! all reported at once. `params()` then returns the typed values, and `mdops
//! doc SCRIPT` prints the declarations. The declaration must be a constant
//! map at the top level, so it can be read without running the script.

mod declare;
mod values;

pub use declare::extract;

use serde_json::Value;
use std::collections::BTreeMap;

/// The name of the declaring function.
pub const FN: &str = "params";

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    String,
    Enum(Vec<String>),
    Int {
        min: Option<i64>,
        max: Option<i64>,
    },
    Bool,
    Duration {
        min: Option<i64>,
        max: Option<i64>,
    },
    Size,
    Accounts,
    Account,
    Path(Must),
    List(Option<Vec<String>>),
    Template,
    /// The name of an environment variable to hand a command a value in.
    Env,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Must {
    Any,
    Exist,
    File,
    Dir,
    WritableDir,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub kind: Kind,
    pub required: bool,
    /// The default as written (it is checked like a given value).
    pub default: Option<String>,
    pub doc: String,
}

/// A script's declared parameters, in declaration order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Params(pub Vec<Param>);

/// Placeholders a `template` may use.
pub const PLACEHOLDERS: &[&str] = &["{account}", "{ACCOUNT}", "{name}", "{NAME}"];

impl Params {
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|p| p.name == name)
    }

    /// Checks every `--arg` against the declarations: the typed values (a
    /// JSON object with every declared name, `null` when absent), or every
    /// problem found, one sentence each.
    pub fn bind(&self, args: &[(String, String)]) -> Result<Value, Vec<String>> {
        let mut problems = Vec::new();
        let mut given: BTreeMap<&str, &str> = BTreeMap::new();
        let names: Vec<String> = self.0.iter().map(|p| p.name.clone()).collect();
        for (k, v) in args {
            if given.insert(k.as_str(), v.as_str()).is_some() {
                problems.push(format!("argument {k} is given twice"));
            }
            if self.get(k).is_none() {
                let hint = crate::script::diagnostics::suggest(k, &names)
                    .map(|s| format!("; did you mean {s}?"))
                    .unwrap_or_else(|| {
                        if names.is_empty() {
                            "; this script takes no arguments".into()
                        } else {
                            format!(" (it takes {})", names.join(", "))
                        }
                    });
                problems.push(format!(
                    "unknown argument {}{hint}",
                    crate::output::escape(k)
                ));
            }
        }
        let mut out = serde_json::Map::new();
        for p in &self.0 {
            let value = match (given.get(p.name.as_str()), &p.default) {
                (Some(raw), _) => match p.check_given(raw) {
                    Ok(v) => v,
                    Err(e) => {
                        problems.push(format!(
                            "argument {}={}: {}",
                            p.name,
                            crate::output::escape(&format!("{raw:?}")),
                            crate::output::escape(&e)
                        ));
                        Value::Null
                    }
                },
                (None, Some(d)) => p.check(d).unwrap_or(Value::Null),
                (None, None) if p.required => {
                    problems.push(format!(
                        "missing argument {}: pass --arg {}=... ({}: {})",
                        p.name,
                        p.name,
                        p.type_text(),
                        p.doc
                    ));
                    Value::Null
                }
                (None, None) => Value::Null,
            };
            out.insert(p.name.clone(), value);
        }
        if problems.is_empty() {
            Ok(Value::Object(out))
        } else {
            Err(problems)
        }
    }

    /// The `Parameters:` block of `mdops doc SCRIPT`.
    pub fn render(&self) -> String {
        if self.0.is_empty() {
            return "Parameters: none.\n".into();
        }
        let cols: Vec<(String, String, &str)> = self
            .0
            .iter()
            .map(|p| {
                let ty = match (&p.default, p.required) {
                    (_, true) => format!("{}, required", p.type_text()),
                    (Some(d), _) => format!("{} = {d}", p.type_text()),
                    (None, _) => p.type_text(),
                };
                (p.name.clone(), ty, p.doc.as_str())
            })
            .collect();
        let w0 = cols.iter().map(|c| c.0.len()).max().unwrap_or(0);
        let w1 = cols.iter().map(|c| c.1.chars().count()).max().unwrap_or(0);
        let mut out = String::from("Parameters (--arg NAME=VALUE):\n");
        for (n, t, d) in cols {
            let pad = w1 - t.chars().count();
            out.push_str(&format!("  {n:<w0$}  {t}{}  {d}\n", " ".repeat(pad)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::values::check_selector;
    use super::*;

    const DECL: &str = r#"
        let p = params(#{
            accounts:   #{type: "accounts", required: true, doc: "which accounts"},
            older_than: #{type: "duration", default_value: "90d", min: "1h", doc: "age"},
            flock:      #{type: "int", min: 0, max: 64, doc: "pool"},
            sink:       #{type: "enum", values: ["file", "env-file"], "default": "file", doc: "where"},
        });
        p
    "#;

    fn args(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn declarations_keep_their_order() {
        let p = extract(DECL, "t.rhai").unwrap().unwrap();
        let names: Vec<&str> = p.0.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["accounts", "older_than", "flock", "sink"]);
        assert!(
            p.render().contains("older_than  duration >= 1h = 90d"),
            "{}",
            p.render()
        );
    }

    /// "m" first is refused where a month is in range; where it is not (a
    /// cooldown of at most a day), "m" can only be minutes.
    #[test]
    fn a_leading_m_is_refused_where_a_month_is_in_range() {
        let p = extract(
            r#"params(#{
                age:      #{type: "duration", doc: "a"},
                ttl:      #{type: "duration", min: "5m", max: "365d", doc: "t"},
                cooldown: #{type: "duration", min: "1m", max: "1d", doc: "c"},
            });"#,
            "t.rhai",
        )
        .unwrap()
        .unwrap();
        let one = |k: &str, v: &str| p.bind(&args(&[(k, v)]));
        for (k, v, want) in [
            (
                "age",
                "6m",
                "(6 minutes or 6 months?): write 6min for minutes",
            ),
            (
                "age",
                "90m30s",
                "(90 minutes or 90 months?): write 90min30s for minutes",
            ),
            ("ttl", "12m", "write 12min for minutes"),
            ("ttl", "13m", "write 13min for minutes"),
        ] {
            let e = one(k, v).unwrap_err();
            assert!(
                e[0].contains(&format!("\"{v}\" is ambiguous")),
                "{k}={v}: {e:?}"
            );
            assert!(e[0].contains(want), "{k}={v}: {e:?}");
        }
        assert_eq!(one("age", "6min").unwrap()["age"], 360);
        assert_eq!(one("age", "1h30m").unwrap()["age"], 5_400);
        assert_eq!(one("ttl", "13min").unwrap()["ttl"], 780);
        assert_eq!(
            one("cooldown", "10m").unwrap()["cooldown"],
            600,
            "a month is out of range"
        );
        let e = one("age", "6mo").unwrap_err();
        assert!(e[0].contains("months have no fixed length"), "{e:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let p = extract(DECL, "t.rhai").unwrap().unwrap();
        let problems = p
            .bind(&args(&[
                ("acounts", "tenant_acme"),
                ("older_than", "-1d"),
                ("flock", "100"),
            ]))
            .unwrap_err();
        // A number of seconds is a duration where a script declares it.
        let secs = extract(
            "params(#{t: #{type: \"duration\", default_value: 3600, doc: \"d\"}});",
            "t.rhai",
        )
        .unwrap()
        .unwrap();
        assert_eq!(secs.bind(&args(&[])).unwrap()["t"], 3600);
        assert_eq!(secs.bind(&args(&[("t", "2h")])).unwrap()["t"], 7200);
        let bare = p
            .bind(&args(&[("accounts", "all"), ("older_than", "90")]))
            .unwrap_err();
        assert_eq!(
            bare,
            ["argument older_than=\"90\": \"90\" has no unit: write 90d for days, 90h for hours, 90min for minutes or 90s for seconds"]
        );
        assert_eq!(
            problems,
            [
                "unknown argument acounts; did you mean accounts?",
                "missing argument accounts: pass --arg accounts=... (accounts: which accounts)",
                "argument older_than=\"-1d\": \"-1d\" is not a positive duration",
                "argument flock=\"100\": 100 is above the maximum 64",
            ]
        );
        let ok = p
            .bind(&args(&[("accounts", "all"), ("flock", "2")]))
            .unwrap();
        assert_eq!(ok["older_than"], 90 * 86400);
        assert_eq!(ok["sink"], "file");
        assert_eq!(ok["flock"], 2);
    }

    #[test]
    fn bad_declarations_point_at_the_parameter() {
        let e = extract("params(#{x: #{type: \"nope\", doc: \"d\"}});", "t.rhai").unwrap_err();
        assert!(e.message.contains("unknown type \"nope\""), "{}", e.message);
        let e = extract(
            "let d = 5; params(#{x: #{type: \"int\", default_value: d, doc: \"d\"}});",
            "t.rhai",
        )
        .unwrap_err();
        assert!(
            e.message.contains("must be a constant map"),
            "{}",
            e.message
        );
        assert!(extract("let x = 1;", "t.rhai").unwrap().is_none());
    }

    #[test]
    fn selectors_and_templates() {
        assert!(check_selector("tenant_0[0-2]*").is_ok());
        assert!(check_selector("a,,b").is_err());
        assert!(check_selector("a;rm").is_err());
        let t = Param {
            name: "t".into(),
            kind: Kind::Template,
            required: false,
            default: None,
            doc: "d".into(),
        };
        assert!(t.check("{account}/{name}.token").is_ok());
        assert!(t.check("{acount}.token").unwrap_err().contains("{acount}"));
        assert!(t.check("awk '{print}' ${HOME}").is_ok());
    }
}
