//! Delivering secrets and running commands, with the run's rules: a dry run
//! only plans; a target that already holds another live token of this run is
//! refused before anything is written; a delivery that succeeded settles the
//! token in the ledger and the journal.

use super::{Error, Runtime};
use crate::api::SecretString;
use crate::process::{Outcome, Program, Spec};
use crate::store::group_of;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

/// Where a secret goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The whole file; `mkdir` creates a missing directory (0700).
    File { path: PathBuf, mkdir: bool },
    /// One `KEY=value` entry of an env file.
    EnvFile { path: PathBuf, key: String },
    /// A command's standard input.
    Command(Program),
    /// One field of a Vault KV v2 secret.
    Vault(crate::sinks::vault::VaultTarget),
    /// One key of a Kubernetes Secret.
    K8s(crate::sinks::k8s::K8sTarget),
    /// A GitHub Actions secret.
    Github(crate::sinks::github::GithubTarget),
    /// An AWS Secrets Manager secret (or one field of it).
    Aws(crate::sinks::aws::AwsTarget),
}

use super::stores::{process_env, vault_env};
use crate::sinks::aws::AwsConfig;
use crate::sinks::github::GithubConfig;
use crate::sinks::k8s::K8sConfig;

impl Target {
    /// How the journal and messages name it: `file:PATH`, `env-file:PATH#KEY`, `command:CMD`.
    pub fn label(&self) -> String {
        match self {
            Target::File { path, .. } => format!("file:{}", path.display()),
            Target::EnvFile { path, key } => format!("env-file:{}#{key}", path.display()),
            Target::Command(p) => format!("command:{}", p.shown()),
            Target::Vault(t) => t.label(),
            Target::K8s(t) => t.label(),
            Target::Github(t) => t.label(),
            Target::Aws(t) => t.label(),
        }
    }

    /// The place this target is part of, when that place is written whole:
    /// an AWS secret, whose fields are written by reading the secret,
    /// changing one field and putting it all back (Secrets Manager has no
    /// conditional write). Two writers of one secret take turns, or each
    /// would drop the other's field, and a token with it.
    pub fn shared_with(&self) -> Option<String> {
        match self {
            Target::Aws(t) => Some(
                Target::Aws(crate::sinks::aws::AwsTarget {
                    secret_id: t.secret_id.clone(),
                    field: None,
                })
                .identity(),
            ),
            _ => None,
        }
    }

    /// Identity for telling two deliveries to one place apart (absolute paths).
    pub fn identity(&self) -> String {
        match self {
            Target::File { path, .. } => crate::sinks::target_id("file", path, None),
            Target::EnvFile { path, key } => crate::sinks::target_id("env-file", path, Some(key)),
            Target::Command(p) => format!("command:{}", p.shown()),
            Target::Vault(t) => vault_env()
                .map(|c| c.identity(t))
                .unwrap_or_else(|_| t.label()),
            Target::K8s(t) => K8sConfig::from_env(&process_env)
                .map(|c| c.identity(t))
                .unwrap_or_else(|_| t.label()),
            Target::Github(t) => GithubConfig::from_env(&process_env)
                .map(|c| c.identity(t))
                .unwrap_or_else(|_| t.label()),
            Target::Aws(t) => AwsConfig::from_env(&process_env)
                .map(|c| c.identity(t))
                .unwrap_or_else(|_| t.label()),
        }
    }

    /// Whether it could be written now (the directory exists and is writable).
    pub fn check(&self) -> Result<(), String> {
        match self {
            Target::File { path, mkdir } => {
                crate::sinks::check_writable(path, *mkdir)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                crate::sinks::check_replaceable(path)
            }
            Target::EnvFile { path, key } => {
                if !crate::sinks::valid_env_key(key) {
                    return Err(format!(
                        "invalid env key {key:?}: use letters, digits and _, not starting with a digit"
                    ));
                }
                crate::sinks::check_writable(path, false)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                crate::sinks::check_env_entry(path, key)
            }
            Target::Command(Program::Argv(a)) if a.is_empty() => {
                Err("the command array is empty".into())
            }
            Target::Command(_) => Ok(()),
            Target::Vault(t) => {
                t.check()?;
                vault_env().map(|_| ())
            }
            Target::K8s(t) => {
                t.check()?;
                K8sConfig::from_env(&process_env).map(|_| ())
            }
            Target::Github(t) => {
                t.check()?;
                GithubConfig::from_env(&process_env).map(|_| ())
            }
            Target::Aws(t) => {
                t.check()?;
                AwsConfig::from_env(&process_env).map(|_| ())
            }
        }
    }
}

/// What a delivery did.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub label: String,
    /// The token this run minted that was delivered, if it was one.
    pub token_id: Option<String>,
    /// What the target held before, when the sink can tell.
    pub previous: Option<SecretString>,
}

impl Runtime {
    pub fn deliver(&self, target: &Target, secret: &SecretString) -> Result<Delivery, Error> {
        let label = target.label();
        crate::redact::register(secret.expose());
        if self.options.dry_run {
            self.plan("deliver secret", &label, Some(secret.redacted()));
            return Ok(Delivery {
                label,
                token_id: None,
                previous: None,
            });
        }
        if self.bridge.is_cancelled() {
            return Err(crate::api::ApiError::Cancelled.into());
        }
        // A secret is handed over only while this run's record (and, on a
        // shared server, its liveness lock) is known to be there: otherwise
        // another runner may be settling this run's tokens as a dead run's.
        self.state_ready()?;
        let identity = target.identity();
        let shared = target.shared_with();
        // Held until the delivery is recorded (or failed): see `claim_target`.
        let _claim = self
            .ledger
            .claim_target(&identity, secret, shared.as_deref())
            .map_err(Error::Sink)?;
        let minted = self.ledger.minted_by_secret(secret);
        // The journal knows a token by this (an HMAC): computed once per delivery.
        let fingerprint = self.store().ok().map(|s| s.fingerprint(secret));
        if let Some((username, _, name)) = &minted {
            self.check_owner(&identity, &label, username, &group_of(name.as_deref()))?;
            // Journal before the write: see `Store::journal_delivering`.
            let store = self.store()?;
            let holder = store
                .journal_delivering(
                    fingerprint.as_deref().unwrap_or_default(),
                    &identity,
                    self.ledger.run_id(),
                    shared.as_deref(),
                )
                .map_err(Error::state)?;
            if let Some((token_id, account, run)) = holder {
                return Err(Error::Sink(format!(
                    "{} has token {} of {}, delivered by run {run}, which is still going on or began after this one: writing over it would leave that token live with nobody holding it (nothing was written; once that run has ended, start this one again)",
                    crate::output::escape(&label),
                    crate::output::escape(&token_id),
                    crate::output::escape(&account),
                )));
            }
        }
        let cancelled = || self.bridge.is_cancelled();
        let wait = crate::sinks::Wait {
            cancelled: &cancelled,
            timeout: self.options.command_timeout,
        };
        // This run's workers take turns at a place written whole (other runs
        // are kept off by the journal's announcement).
        let _turn = shared.clone().map(Turn::take);
        let previous = match target {
            Target::File { path, mkdir } => crate::sinks::to_file(path, secret, *mkdir, &wait),
            Target::EnvFile { path, key } => crate::sinks::to_env_file(path, key, secret, &wait),
            Target::Command(program) => {
                crate::sinks::to_command(program, secret, self.options.command_timeout, &cancelled)
                    .map(|_| None)
            }
            Target::Vault(t) => self
                .vault()
                .and_then(|v| crate::sinks::vault::to_vault(&v.1, &v.0, t, secret, &cancelled)),
            Target::K8s(t) => self
                .k8s()
                .and_then(|v| crate::sinks::k8s::to_k8s(&v.1, &v.0, t, secret, &cancelled)),
            Target::Github(t) => self
                .github()
                .and_then(|v| crate::sinks::github::to_github(&v.1, &v.0, t, secret, &cancelled)),
            Target::Aws(t) => self.aws().and_then(|v| {
                let token_id = minted.as_ref().map(|m| m.1.as_str());
                crate::sinks::aws::to_aws(&v.1, &v.0, t, secret, token_id, &cancelled)
            }),
        }
        .map_err(|e| {
            // Nothing landed (as far as the sink can tell): the journal must
            // not say it was delivered.
            if minted.is_some() {
                if let Ok(store) = self.store() {
                    let _ = store.journal_not_delivered(
                        fingerprint.as_deref().unwrap_or_default(),
                        &identity,
                    );
                }
            }
            Error::Sink(e)
        })?;
        #[cfg(unix)]
        if let Target::File { path, .. } | Target::EnvFile { path, .. } = target {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(path) {
                if m.permissions().mode() & 0o004 != 0 {
                    self.warn_once(&format!(
                        "{} is readable by every user (mode {:o}); the token in it is too",
                        path.display(),
                        m.permissions().mode() & 0o777
                    ));
                }
            }
        }
        let token_id = self.ledger.delivered(&identity, secret, previous.as_ref());
        match self.store() {
            Ok(store) => {
                // Whose token the target holds now: one this run minted, one the
                // journal knows (a token put back after a failed rotation), or
                // one mdops never minted (then the target's record is dropped:
                // it no longer holds what the record says).
                let fp = fingerprint
                    .clone()
                    .unwrap_or_else(|| store.fingerprint(secret));
                // The delivery and whose token the target holds: one commit.
                if let Err(e) = store.journal_delivered_to(&fp, &label, &identity, minted.clone()) {
                    self.warn(&format!(
                        "delivered to {label} but the journal could not record it: {}",
                        e.0
                    ));
                }
            }
            Err(e) => self.warn(&format!(
                "delivered to {label} but the journal is unavailable: {e}"
            )),
        }
        Ok(Delivery {
            label,
            token_id,
            previous,
        })
    }

    /// A target belongs to the token group that first received a token there:
    /// a token of another account or group may not overwrite it while that
    /// group's token is live (two groups would share one place, and one of
    /// them would lose its token).
    fn check_owner(
        &self,
        identity: &str,
        label: &str,
        username: &str,
        group: &str,
    ) -> Result<(), Error> {
        let store = self.store()?;
        let Some((owner, owner_group, token_id)) = store
            .delivery_owner(identity)
            .map_err(|e| Error::State(e.0))?
        else {
            return Ok(());
        };
        if owner.eq_ignore_ascii_case(username) && owner_group == group {
            return Ok(());
        }
        let revoked = store
            .journal_get(&token_id)
            .map_err(|e| Error::State(e.0))?
            .is_some_and(|j| j.revoked_at.is_some());
        if revoked {
            return Ok(());
        }
        Err(Error::Sink(format!(
            "{} holds the token of {}/{} (token {}); a token of {username}/{group} must not replace it: give each token group its own target",
            crate::output::escape(label),
            crate::output::escape(&owner),
            crate::output::escape(&owner_group),
            crate::output::escape(&token_id)
        )))
    }

    /// Whether a target can take a secret now, as far as can be told without
    /// writing: [`Target::check`], and for a secret store, whether its
    /// credentials are accepted (a read of the place).
    pub fn check_target(&self, target: &Target) -> Result<(), String> {
        target.check()?;
        let cancelled = || self.bridge.is_cancelled();
        match target {
            Target::Vault(t) => {
                let v = self.vault()?;
                crate::sinks::vault::probe(&v.1, &v.0, t, &cancelled)
            }
            Target::K8s(t) => {
                let v = self.k8s()?;
                crate::sinks::k8s::probe(&v.1, &v.0, t, &cancelled)
            }
            Target::Github(t) => {
                let v = self.github()?;
                crate::sinks::github::probe(&v.1, &v.0, t, &cancelled)
            }
            Target::Aws(t) => {
                let v = self.aws()?;
                crate::sinks::aws::probe(&v.1, &v.0, t, &cancelled)
            }
            _ => Ok(()),
        }
    }

    /// Whether the run's state can record what happens next (a round trip
    /// to a PostgreSQL server; nothing to check in memory or SQLite).
    pub fn state_ready(&self) -> Result<(), Error> {
        if matches!(self.state_location(), super::StateLocation::Postgres(_)) {
            self.store()?.ready().map_err(Error::state)?;
        }
        Ok(())
    }

    /// The script took a secret's value: if this run minted it, it is settled,
    /// and the journal must say so before the value is handed over (else a
    /// later run would revoke it as never delivered).
    pub fn reveal(&self, secret: &SecretString) -> Result<(), Error> {
        if self.ledger.minted_by_secret(secret).is_some() {
            self.state_ready()?;
            if let Some(id) = self.ledger.revealed(secret) {
                if let Ok(store) = self.store() {
                    store.journal_revealed(&id).map_err(Error::state)?;
                }
            }
        }
        crate::redact::allow(secret.expose());
        Ok(())
    }

    /// Runs a command for the script (`sh`, `secrets::check_command`) with the
    /// run's timeout; Ctrl-C and SIGTERM kill it. `None` in a dry run, where
    /// commands are only planned (`action`).
    pub fn run_command(
        &self,
        action: &str,
        program: Program,
        env: Vec<(String, SecretString)>,
    ) -> Result<Option<Outcome>, Error> {
        if self.options.dry_run {
            let detail = env
                .first()
                .map(|(k, v)| format!("with {k}={}", v.redacted()));
            self.plan(action, &program.shown(), detail);
            return Ok(None);
        }
        if self.bridge.is_cancelled() {
            return Err(crate::api::ApiError::Cancelled.into());
        }
        for (_, v) in &env {
            crate::redact::register(v.expose());
        }
        if !env.is_empty() {
            self.state_ready()?;
        }
        let cancelled = || self.bridge.is_cancelled();
        let outcome = crate::process::run(Spec {
            program,
            stdin: None,
            env,
            timeout: self.options.command_timeout,
            cancelled: &cancelled,
        })
        .map_err(Error::Sink)?;
        if outcome.cancelled {
            return Err(crate::api::ApiError::Cancelled.into());
        }
        Ok(Some(outcome))
    }
}

/// The places being written whole by a worker of this process now.
static TURNS: std::sync::LazyLock<(Mutex<HashSet<String>>, Condvar)> =
    std::sync::LazyLock::new(Default::default);

/// One worker's turn at a place written whole: the others wait for it.
struct Turn(String);

impl Turn {
    fn take(place: String) -> Turn {
        let (taken, turned) = &*TURNS;
        let mut taken = taken.lock().unwrap_or_else(|e| e.into_inner());
        while taken.contains(&place) {
            taken = turned.wait(taken).unwrap_or_else(|e| e.into_inner());
        }
        taken.insert(place.clone());
        Turn(place)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let (taken, turned) = &*TURNS;
        taken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
        turned.notify_all();
    }
}
