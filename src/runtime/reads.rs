//! Reads, seen through the dry-run overlay, and the one definition of "the
//! organization's service accounts".

use super::overlay::Known;
use super::{Error, Runtime};
use crate::api::{ActiveAccount, ApiError, DucklingConfig, Token, User};
use crate::store::{InventoryEntry, JournalEntry};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A 404 the way the API answers for an account that does not exist.
fn no_such_account(method: &str, path: String, username: &str) -> Error {
    Error::from(ApiError::Status {
        method: method.into(),
        path,
        status: 404,
        code: Some("NOT_FOUND".into()),
        message: format!("User {username} not found (deleted earlier in this dry run)"),
        issues: vec![],
    })
}

/// The server's accounts and the inventory's, each once (compared without
/// case), sorted.
pub(super) fn merged(accounts: ServiceAccounts, inventory: &[InventoryEntry]) -> Vec<String> {
    let mut names = accounts.server;
    for e in inventory {
        names
            .entry(e.username.to_lowercase())
            .or_insert_with(|| e.username.clone());
    }
    names.into_values().collect()
}

/// The organization's service accounts, as one merge of every source.
#[derive(Debug, Clone, Default)]
pub struct ServiceAccounts {
    /// On the server: the user list's service accounts (not deprovisioned)
    /// and accounts with running Ducklings, by lower-cased name.
    pub server: BTreeMap<String, String>,
    /// False when the server has no user list (`GET /v1/users`): then
    /// `server` holds only accounts with running Ducklings.
    pub complete: bool,
}

impl Runtime {
    pub fn list_tokens(&self, username: &str) -> Result<Vec<Token>, Error> {
        crate::api::rules::path_username(username)?;
        let server = match self.planned(username) {
            Some(Known::Planned) => Vec::new(),
            Some(Known::Deleted) => {
                return Err(no_such_account(
                    "GET",
                    format!("/v1/users/{username}/tokens"),
                    username,
                ))
            }
            _ => self.call(|c| async move { c.list_tokens(username).await })?,
        };
        Ok(match self.overlay() {
            Some(o) => o.tokens(username, server),
            None => server,
        })
    }

    pub fn get_ducklings(&self, username: &str) -> Result<DucklingConfig, Error> {
        crate::api::rules::path_username(username)?;
        if let Some(Known::Deleted) = self.planned(username) {
            return Err(no_such_account(
                "GET",
                format!("/v1/users/{username}/instances"),
                username,
            ));
        }
        if let Some(planned) = self.planned_ducklings(username) {
            return Ok(planned);
        }
        Ok(self.call(|c| async move { c.get_ducklings(username).await })?)
    }

    /// Whether the account exists (case-insensitive).
    pub fn account_exists(&self, username: &str) -> Result<bool, Error> {
        crate::api::rules::path_username(username)?;
        match self.planned(username) {
            Some(Known::Planned) => return Ok(true),
            Some(Known::Deleted) => return Ok(false),
            _ => {}
        }
        match self.call(|c| async move { c.get_ducklings(username).await }) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub fn active_accounts(&self) -> Result<Vec<ActiveAccount>, Error> {
        let mut active = self.call(|c| async move { c.active_accounts().await })?;
        if let Some(o) = self.overlay() {
            active.retain(|a| o.account(&a.username) != Known::Deleted);
        }
        Ok(active)
    }

    /// Every member from `GET /v1/users`, or `None` when the API has no user list.
    pub fn users(&self, filters: &[(&'static str, bool)]) -> Result<Option<Vec<User>>, Error> {
        Ok(self.call(|c| async move { c.list_users_where(filters).await })?)
    }

    /// The service accounts the server knows of, with a dry run's planned
    /// accounts added and deleted ones removed: the user list's live service
    /// accounts. Running Ducklings name people too, so they count only when
    /// the API has no user list (then with a warning).
    pub fn service_accounts(&self) -> Result<ServiceAccounts, Error> {
        let users = self.call(|c| async move { c.list_users().await })?;
        let complete = users.is_some();
        let mut server = BTreeMap::new();
        match users {
            Some(users) => {
                for u in users {
                    if u.is_service_account == Some(true) && u.is_deprovisioned != Some(true) {
                        server
                            .entry(u.username.to_lowercase())
                            .or_insert(u.username);
                    }
                }
            }
            None => {
                self.warn_once(
                    "this API has no list of users (GET /v1/users): the accounts known are the inventory's and those with running Ducklings",
                );
                for a in self.call(|c| async move { c.active_accounts().await })? {
                    server
                        .entry(a.username.to_lowercase())
                        .or_insert(a.username);
                }
            }
        }
        if let Some(o) = self.overlay() {
            server = o.accounts(server);
        }
        Ok(ServiceAccounts { server, complete })
    }

    /// Usernames of every known service account: the server's (see
    /// [`Runtime::service_accounts`]) and the inventory's, sorted.
    pub fn account_names(&self) -> Result<Vec<String>, Error> {
        self.names_with(self.service_accounts()?)
    }

    /// [`Runtime::account_names`] from the server's accounts already read.
    pub(super) fn names_with(&self, accounts: ServiceAccounts) -> Result<Vec<String>, Error> {
        let inventory = self.inventory_seen(&accounts).unwrap_or_else(|e| {
            self.warn(&format!(
                "the inventory is unavailable, listing server accounts only: {e}"
            ));
            Vec::new()
        });
        Ok(merged(accounts, &inventory))
    }

    /// The inventory, its entries for the server's accounts marked as seen.
    pub(super) fn inventory_seen(
        &self,
        accounts: &ServiceAccounts,
    ) -> Result<Vec<InventoryEntry>, Error> {
        self.inventory_list_touching(&accounts.server.values().cloned().collect::<Vec<_>>())
    }

    fn inventory_list_touching(&self, seen: &[String]) -> Result<Vec<InventoryEntry>, Error> {
        let store = self.store()?;
        if !self.options.dry_run {
            store.inventory_touch(seen).map_err(|e| Error::State(e.0))?;
        }
        self.inventory_list()
    }

    pub fn inventory_list(&self) -> Result<Vec<InventoryEntry>, Error> {
        let stored = self
            .store()?
            .inventory_list()
            .map_err(|e| Error::State(e.0))?;
        Ok(match self.overlay() {
            Some(o) => o.inventory(stored),
            None => stored,
        })
    }

    pub fn inventory_get(&self, username: &str) -> Result<Option<InventoryEntry>, Error> {
        if let Some(change) = self.overlay().and_then(|o| o.inventory_entry(username)) {
            return Ok(change);
        }
        self.store()?
            .inventory_get(username)
            .map_err(|e| Error::State(e.0))
    }

    pub fn journal_get(&self, token_id: &str) -> Result<Option<JournalEntry>, Error> {
        self.store()?
            .journal_get(token_id)
            .map_err(|e| Error::State(e.0))
    }

    /// The sink targets holding token `token_id`, as far as this install's
    /// deliveries tell.
    pub fn targets_of(&self, token_id: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .store()?
            .delivery_targets(token_id)
            .map_err(|e| Error::State(e.0))?
            .iter()
            .map(|id| crate::sinks::current_id(id))
            .collect())
    }

    /// Whether another run that is still alive minted this entry (its token
    /// may be on its way to being delivered and verified: not stale).
    pub fn in_progress(&self, entry: &JournalEntry) -> bool {
        let Some(run) = entry.run_id.as_deref() else {
            return false;
        };
        if run == self.ledger.run_id() {
            return false;
        }
        match self.state_location() {
            super::StateLocation::Memory => false,
            _ => self.store().map(|s| s.is_alive(run)).unwrap_or(false),
        }
    }

    pub fn journal_list(&self, username: Option<&str>) -> Result<Vec<JournalEntry>, Error> {
        self.store()?
            .journal_list(username)
            .map_err(|e| Error::State(e.0))
    }
}

impl Runtime {
    /// Whether `secret` authenticates as `username`. It records nothing: a
    /// workflow marks a token verified (`mark_verified`) once every one of its
    /// checks passed, not when the first one did. A dry run's placeholder passes.
    pub fn verify_token(
        &self,
        username: &str,
        secret: &crate::api::SecretString,
    ) -> Result<bool, Error> {
        if self.placeholder(secret) {
            return Ok(true);
        }
        Ok(self.call(|c| async move { c.verify_token(username, secret).await })?)
    }

    /// Whether `secret` is a dry run's placeholder, which passes without
    /// asking; any other is known to the redactor from here on.
    fn placeholder(&self, secret: &crate::api::SecretString) -> bool {
        if self.options.dry_run && secret.expose().starts_with("dry-run-") {
            return true;
        }
        crate::redact::register(secret.expose());
        false
    }

    /// [`Runtime::verify_token`] in two halves: the request starts now, on the
    /// runtime's threads, and [`Verification::wait`] gives its answer. A
    /// workflow checks a new token this way while it delivers it, instead of
    /// after. Dropping the handle unanswered cancels the request.
    pub fn start_verify(
        &self,
        username: &str,
        secret: &crate::api::SecretString,
    ) -> Result<Verification, Error> {
        if self.placeholder(secret) {
            return Ok(Verification::answered(Ok(true)));
        }
        let client = self.client()?;
        let (username, secret) = (username.to_string(), secret.clone());
        let task = self
            .bridge
            .handle()
            .spawn(async move { client.verify_token(&username, &secret).await });
        Ok(Verification(Arc::new(Mutex::new(Pending::Running(
            AbortOnDrop(task),
        )))))
    }

    /// Records in the journal that a token mdops minted passed every check
    /// (rotation then trusts it as the current token). Returns whether the
    /// journal knew the token; nothing is recorded in a dry run.
    pub fn mark_verified(&self, secret: &crate::api::SecretString) -> Result<bool, Error> {
        if self.options.dry_run {
            return Ok(secret.expose().starts_with("dry-run-"));
        }
        let store = self.store()?;
        let fingerprint = store.fingerprint(secret);
        store
            .journal_verified(&fingerprint)
            .map_err(|e| Error::State(e.0))
    }
}

/// What `mdops whoami` learns from the server about the admin token.
#[derive(Debug, Default)]
pub struct AdminCheck {
    /// The token authenticates (`None`: the server could not be asked).
    pub accepted: Option<bool>,
    /// It may do admin work (`GET /v1/active_accounts` needs the Admin role).
    pub admin: Option<bool>,
    /// The server offers the user list (`GET /v1/users`) to this token.
    pub user_list: Option<bool>,
    /// Why the check failed (401, 403, unreachable).
    pub error: Option<ApiError>,
}

impl Runtime {
    /// Asks the server about the admin token with two reads that change
    /// nothing: the admin-only list of running Ducklings, then the user list.
    pub fn check_admin(&self) -> AdminCheck {
        let mut check = AdminCheck::default();
        match self.call(|c| async move { c.active_accounts().await }) {
            Ok(_) => {
                check.accepted = Some(true);
                check.admin = Some(true);
            }
            Err(e) => {
                match &e {
                    ApiError::Status { status: 401, .. } => check.accepted = Some(false),
                    ApiError::Status { status: 403, .. } => {
                        check.accepted = Some(true);
                        check.admin = Some(false);
                    }
                    _ => {}
                }
                check.error = Some(e);
                return check;
            }
        }
        check.user_list = match self.call(|c| async move { c.list_users().await }) {
            Ok(list) => Some(list.is_some()),
            Err(ApiError::Status { status: 403, .. }) => Some(false),
            Err(_) => None,
        };
        check
    }
}

/// A verification under way ([`Runtime::start_verify`]); clones share it.
#[derive(Clone)]
pub struct Verification(Arc<Mutex<Pending>>);

enum Pending {
    Running(AbortOnDrop),
    Answered(Result<bool, Error>),
}

/// The request stops when nobody will read its answer.
struct AbortOnDrop(tokio::task::JoinHandle<Result<bool, ApiError>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Verification {
    fn answered(r: Result<bool, Error>) -> Verification {
        Verification(Arc::new(Mutex::new(Pending::Answered(r))))
    }

    /// Whether the token authenticates, waiting for the answer if it has not
    /// come yet (as long as any call: the run's deadline, Ctrl-C). The same
    /// answer every time it is asked.
    pub fn wait(&self, rt: &Runtime) -> Result<bool, Error> {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Pending::Running(task) = &mut *p {
            let answer = rt.bridge.block_on(async {
                (&mut task.0).await.unwrap_or_else(|e| {
                    Err(ApiError::Setup(format!("the verification stopped: {e}")))
                })
            });
            match answer {
                // Cancelled: the request may yet answer; ask again later.
                Err(ApiError::Cancelled) => return Err(ApiError::Cancelled.into()),
                r => *p = Pending::Answered(r.map_err(Error::from)),
            }
        }
        match &*p {
            Pending::Answered(r) => r.clone(),
            Pending::Running(_) => unreachable!("answered above"),
        }
    }
}
