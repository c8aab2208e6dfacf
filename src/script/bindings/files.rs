//! Reading input files. These are reads, so they work in dry runs too.

use crate::script::convert::RhaiResultOf;
use crate::script::convert::{script_error, to_dynamic};
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};

/// Input files larger than this are refused.
const MAX_INPUT: u64 = 64 << 20;

fn read(ctx: &NativeCallContext, path: &str) -> RhaiResultOf<String> {
    let fail = |why: String| script_error(ctx, "file", format!("cannot read {path}: {why}"));
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if meta.is_dir() {
        return Err(fail("it is a directory".into()));
    }
    if meta.len() > MAX_INPUT {
        return Err(fail(format!("it is larger than {} MB", MAX_INPUT >> 20)));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "it is not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text))
}

#[export_module]
pub mod api {
    use super::*;

    /// The whole text of a file (UTF-8).
    #[rhai_fn(return_raw, volatile)]
    pub fn read_text(ctx: NativeCallContext, path: &str) -> RhaiResultOf<String> {
        read(&ctx, path)
    }

    /// The lines of a text file, without their line endings.
    #[rhai_fn(return_raw, volatile)]
    pub fn read_lines(ctx: NativeCallContext, path: &str) -> RhaiResultOf<Array> {
        Ok(read(&ctx, path)?
            .lines()
            .map(|l| Dynamic::from(l.to_string()))
            .collect())
    }

    /// The rows of a CSV file as maps keyed by its header row (values are strings).
    /// A malformed row is an error naming its line.
    #[rhai_fn(return_raw, volatile)]
    pub fn read_csv(ctx: NativeCallContext, path: &str) -> RhaiResultOf<Array> {
        let text = read(&ctx, path)?;
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = rdr
            .headers()
            .map_err(|e| script_error(&ctx, "file", format!("{path}: {e}")))?
            .clone();
        let mut rows = Array::new();
        for record in rdr.records() {
            let record = record.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                script_error(&ctx, "file", format!("{path}:{line}: {e}"))
            })?;
            let mut m = Map::new();
            for (h, v) in headers.iter().zip(record.iter()) {
                m.insert(h.into(), v.to_string().into());
            }
            rows.push(m.into());
        }
        Ok(rows)
    }

    /// A JSON file as Rhai values (objects become maps, null `()`).
    #[rhai_fn(return_raw, volatile)]
    pub fn read_json(ctx: NativeCallContext, path: &str) -> RhaiResultOf<Dynamic> {
        let text = read(&ctx, path)?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            script_error(
                &ctx,
                "file",
                format!("{path}:{}:{}: not valid JSON", e.line(), e.column()),
            )
        })?;
        Ok(to_dynamic(&v))
    }
}
