//! The secret stores a run delivers to: their configuration, read from the
//! environment once, their HTTP clients, and the check before anything is
//! minted that a store's credentials are accepted.

use super::Runtime;
use std::path::PathBuf;

/// The secret stores' configuration and clients, made on first use.
#[derive(Default)]
pub struct Stores {
    vault: std::sync::OnceLock<Result<std::sync::Arc<(VaultConfig, Http)>, String>>,
    k8s: std::sync::OnceLock<Result<std::sync::Arc<(K8sConfig, Http)>, String>>,
    github: std::sync::OnceLock<Result<std::sync::Arc<(GithubConfig, Http)>, String>>,
    aws: std::sync::OnceLock<Result<std::sync::Arc<(AwsConfig, Http)>, String>>,
}

use crate::sinks::aws::AwsConfig;

use crate::sinks::github::GithubConfig;
use crate::sinks::k8s::K8sConfig;

pub(super) fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

use crate::sinks::http::Http;
use crate::sinks::vault::VaultConfig;

pub(super) fn vault_env() -> Result<VaultConfig, String> {
    VaultConfig::from_env(
        &|k| std::env::var(k).ok(),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

impl Runtime {
    /// The Vault client of this run (configuration read once).
    pub(super) fn vault(&self) -> Result<std::sync::Arc<(VaultConfig, Http)>, String> {
        self.stores
            .vault
            .get_or_init(|| {
                let cfg = vault_env()?;
                let http = Http::new(
                    "Vault",
                    self.bridge.handle().clone(),
                    cfg.cacert.as_deref(),
                    true,
                )?;
                Ok(std::sync::Arc::new((cfg, http)))
            })
            .clone()
    }

    pub(super) fn k8s(&self) -> Result<std::sync::Arc<(K8sConfig, Http)>, String> {
        self.stores
            .k8s
            .get_or_init(|| {
                let cfg = K8sConfig::from_env(&process_env)?;
                // A cluster's CA is the only one its API server's certificate needs.
                let http = Http::new(
                    "Kubernetes",
                    self.bridge.handle().clone(),
                    cfg.ca.as_deref(),
                    true,
                )?;
                Ok(std::sync::Arc::new((cfg, http)))
            })
            .clone()
    }

    pub(super) fn aws(&self) -> Result<std::sync::Arc<(AwsConfig, Http)>, String> {
        self.stores
            .aws
            .get_or_init(|| {
                let cfg = AwsConfig::from_env(&process_env)?;
                let ca = std::env::var_os("AWS_CA_BUNDLE").map(PathBuf::from);
                let http = Http::new("AWS", self.bridge.handle().clone(), ca.as_deref(), false)?;
                Ok(std::sync::Arc::new((cfg, http)))
            })
            .clone()
    }

    pub(super) fn github(&self) -> Result<std::sync::Arc<(GithubConfig, Http)>, String> {
        self.stores
            .github
            .get_or_init(|| {
                let cfg = GithubConfig::from_env(&process_env)?;
                let http = Http::new("GitHub", self.bridge.handle().clone(), None, false)?;
                Ok(std::sync::Arc::new((cfg, http)))
            })
            .clone()
    }
}
