//! Where the Kubernetes API server is and who mdops is to it: the pod's
//! service account in a cluster, or an explicit server, token file and CA.

use super::K8sTarget;
use crate::api::SecretString;
use crate::sinks::http::segment;
use std::path::PathBuf;

const IN_CLUSTER: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

#[derive(Clone)]
pub struct K8sConfig {
    pub server: url::Url,
    token: SecretString,
    pub ca: Option<PathBuf>,
}

impl std::fmt::Debug for K8sConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "K8sConfig({})", self.server)
    }
}

impl K8sConfig {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<K8sConfig, String> {
        let nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let (server, token_file, ca) = if let Some(s) = nonempty("MDOPS_K8S_SERVER") {
            let token = nonempty("MDOPS_K8S_TOKEN_FILE").ok_or(
                "Kubernetes: MDOPS_K8S_SERVER is set but MDOPS_K8S_TOKEN_FILE (a file holding a bearer token) is not",
            )?;
            (
                s,
                PathBuf::from(token),
                nonempty("MDOPS_K8S_CA_FILE").map(PathBuf::from),
            )
        } else if let (Some(host), Some(port)) = (
            nonempty("KUBERNETES_SERVICE_HOST"),
            nonempty("KUBERNETES_SERVICE_PORT"),
        ) {
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            (
                format!("https://{host}:{port}"),
                PathBuf::from(IN_CLUSTER).join("token"),
                Some(PathBuf::from(IN_CLUSTER).join("ca.crt")),
            )
        } else {
            return Err(
                "Kubernetes: not in a cluster (KUBERNETES_SERVICE_HOST is not set) and MDOPS_K8S_SERVER is not set"
                    .into(),
            );
        };
        let server = crate::sinks::http::base_url(&server, "Kubernetes", "the API server address")?;
        let token = std::fs::read_to_string(&token_file).map_err(|e| {
            format!(
                "Kubernetes: cannot read the token file {}: {e}",
                token_file.display()
            )
        })?;
        let token = token.trim().to_string();
        if token.is_empty() || token.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "Kubernetes: the token file {} must hold one bearer token",
                token_file.display()
            ));
        }
        crate::redact::register(&token);
        Ok(K8sConfig {
            server,
            token: SecretString::new(token),
            ca,
        })
    }

    pub fn identity(&self, t: &K8sTarget) -> String {
        format!(
            "k8s:{}/{}/{}#{}",
            self.server.as_str().trim_end_matches('/'),
            t.namespace,
            t.name,
            t.key
        )
    }

    pub(super) fn secrets_url(&self, t: &K8sTarget) -> Result<String, String> {
        Ok(format!(
            "{}/api/v1/namespaces/{}/secrets",
            self.server.as_str().trim_end_matches('/'),
            segment(&t.namespace, "namespace")?
        ))
    }

    pub(super) fn secret_url(&self, t: &K8sTarget) -> Result<String, String> {
        Ok(format!(
            "{}/{}",
            self.secrets_url(t)?,
            segment(&t.name, "secret name")?
        ))
    }

    pub(super) fn auth(&self, b: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        b.bearer_auth(self.token.expose())
            .header("Accept", "application/json")
    }
}
