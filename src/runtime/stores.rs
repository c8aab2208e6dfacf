//! The secret stores a run delivers to: their configuration, read from the
//! environment once, and their HTTP clients.

use super::Runtime;
use crate::sinks::aws::AwsConfig;
use crate::sinks::github::GithubConfig;
use crate::sinks::http::Http;
use crate::sinks::k8s::K8sConfig;
use crate::sinks::vault::VaultConfig;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// A store's configuration and client, or why there is none.
type Client<C> = Result<Arc<(C, Http)>, String>;

/// The secret stores' configuration and clients, made on first use.
#[derive(Default)]
pub struct Stores {
    vault: OnceLock<Client<VaultConfig>>,
    k8s: OnceLock<Client<K8sConfig>>,
    github: OnceLock<Client<GithubConfig>>,
    aws: OnceLock<Client<AwsConfig>>,
}

pub(super) fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

pub(super) fn vault_env() -> Result<VaultConfig, String> {
    VaultConfig::from_env(&process_env, std::env::var_os("HOME").map(PathBuf::from))
}

impl Runtime {
    /// A store's client, made once: its configuration, then an HTTP client
    /// trusting `ca` (only it when `only_ca`, else beside the system's roots).
    fn store_client<C>(
        &self,
        cell: &OnceLock<Client<C>>,
        store: &'static str,
        config: impl FnOnce() -> Result<C, String>,
        ca: impl FnOnce(&C) -> (Option<PathBuf>, bool),
    ) -> Client<C> {
        cell.get_or_init(|| {
            let cfg = config()?;
            let (ca, only_ca) = ca(&cfg);
            let http = Http::new(store, self.bridge.handle().clone(), ca.as_deref(), only_ca)?;
            Ok(Arc::new((cfg, http)))
        })
        .clone()
    }

    /// Vault's CA file replaces the system's roots, as Vault's own client does.
    pub(super) fn vault(&self) -> Client<VaultConfig> {
        self.store_client(&self.stores.vault, "Vault", vault_env, |c| {
            (c.cacert.clone(), true)
        })
    }

    /// A cluster's CA is the only one its API server's certificate needs.
    pub(super) fn k8s(&self) -> Client<K8sConfig> {
        let config = || K8sConfig::from_env(&process_env);
        self.store_client(&self.stores.k8s, "Kubernetes", config, |c| {
            (c.ca.clone(), true)
        })
    }

    pub(super) fn aws(&self) -> Client<AwsConfig> {
        let config = || AwsConfig::from_env(&process_env);
        let ca = |_: &AwsConfig| (std::env::var_os("AWS_CA_BUNDLE").map(PathBuf::from), false);
        self.store_client(&self.stores.aws, "AWS", config, ca)
    }

    pub(super) fn github(&self) -> Client<GithubConfig> {
        let config = || GithubConfig::from_env(&process_env);
        self.store_client(&self.stores.github, "GitHub", config, |_| (None, false))
    }
}
