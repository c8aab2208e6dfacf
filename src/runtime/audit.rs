//! The audit log's side of the write pipeline: one record per mutating call.

use super::Runtime;
use crate::api::ApiError;
use crate::store::AuditRecord;

impl Runtime {
    /// Records a mutating API call in the audit log. The call already happened,
    /// so a failure to record is reported rather than undoing it.
    pub fn audit(
        &self,
        operation: &str,
        target: &str,
        result: Result<(), &ApiError>,
        detail: Option<String>,
    ) {
        let record = self.audit_record(operation, target, result, detail);
        self.store_audit(&record);
    }

    /// Stores an audit record on its own (see [`Runtime::audit`]).
    pub fn store_audit(&self, record: &AuditRecord) {
        if let Err(e) = self
            .state
            .store()
            .and_then(|s| s.audit(record).map_err(|e| e.0))
        {
            self.warn(&format!(
                "could not record `{} {}` in the audit log: {e}",
                record.operation, record.target
            ));
        }
    }

    /// The audit record of a call (noted among the writes done when it worked),
    /// for the caller to store with what else the call changed.
    pub fn audit_record(
        &self,
        operation: &str,
        target: &str,
        result: Result<(), &ApiError>,
        detail: Option<String>,
    ) -> AuditRecord {
        if result.is_ok() {
            self.done
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{operation} {}", crate::output::escape(target)));
        }
        AuditRecord {
            at: String::new(),
            profile: self.profile.clone(),
            api: self.api.as_ref().map(|a| {
                let u = &a.config().base_url;
                match u.port() {
                    Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
                    None => u.host_str().unwrap_or_default().to_string(),
                }
            }),
            operation: operation.to_string(),
            target: target.to_string(),
            outcome: if result.is_ok() { "ok" } else { "error" }.to_string(),
            status: result.err().and_then(ApiError::status),
            detail,
        }
    }
}
