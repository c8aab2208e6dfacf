//! The one document every `--output json` prints.

use serde_json::Value;

/// The version of the `--output json` document (`docs/output.schema.json`).
pub const OUTPUT_VERSION: u32 = 1;

/// The one document every `--output json` prints: `{"mdops_output": 1, "ok",
/// "dry_run", "result", "plan", "summary", "error"}`. Values are raw (seconds,
/// RFC 3339 times, structured maps); display strings belong to text output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope {
    pub ok: bool,
    pub dry_run: bool,
    /// The command's or script's result (`null` when it failed before one).
    pub result: Value,
    /// The writes a dry run planned, in order (empty otherwise).
    pub plan: Vec<Value>,
    /// A run's counts: items, writes, requests, retries, seconds (`null` for
    /// commands that are not runs).
    pub summary: Value,
    /// Why it failed: `{message, exit_code, kind, location}` (`null` when ok).
    pub error: Value,
}

impl Envelope {
    /// A successful command's document.
    pub fn ok(result: Value) -> Envelope {
        Envelope {
            ok: true,
            result,
            ..Envelope::default()
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or(Value::Null)
    }

    /// The document's members in order, borrowed: a large result is written
    /// out, never copied.
    fn view(&self) -> EnvelopeView<'_> {
        EnvelopeView {
            mdops_output: OUTPUT_VERSION,
            ok: self.ok,
            dry_run: self.dry_run,
            result: &self.result,
            plan: &self.plan,
            summary: &self.summary,
            error: &self.error,
        }
    }

    /// The document as printed: pretty JSON, a newline.
    pub fn render(&self) -> String {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&self.view()).unwrap_or_else(|_| "null".into())
        )
    }
}

#[derive(serde::Serialize)]
struct EnvelopeView<'a> {
    mdops_output: u32,
    ok: bool,
    dry_run: bool,
    result: &'a Value,
    plan: &'a [Value],
    summary: &'a Value,
    error: &'a Value,
}

/// The `error` member of an [`Envelope`]: what went wrong, the exit code, its
/// kind, and where in a script (or `null`).
pub fn error_value(
    message: &str,
    exit_code: i32,
    kind: &str,
    location: Option<(&str, usize, usize)>,
) -> Value {
    serde_json::json!({
        "message": message,
        "exit_code": exit_code,
        "kind": kind,
        "location": location.map(|(file, line, column)| {
            serde_json::json!({"file": file, "line": line, "column": column})
        }),
    })
}
