//! Where `secrets::` sends a secret: targets from a script's maps and
//! arguments, each checked before anything is sent.

use crate::runtime::deliver::Target;
use crate::script::bindings::process::program_of;
use crate::script::convert::{invalid, RhaiResultOf};
use rhai::{Map, NativeCallContext};
use std::path::PathBuf;

/// A target from `#{file, mkdir}`, `#{env_file, key}` or `#{command}`.
pub(super) fn target_of(ctx: &NativeCallContext, m: &Map) -> RhaiResultOf<Target> {
    let text = |k: &str| m.get(k).filter(|v| !v.is_unit()).map(|v| v.to_string());
    if let Some(path) = text("file") {
        let mkdir = m
            .get("mkdir")
            .and_then(|v| v.as_bool().ok())
            .unwrap_or(false);
        return Ok(Target::File {
            path: PathBuf::from(path),
            mkdir,
        });
    }
    if let Some(path) = text("env_file") {
        let key =
            text("key").ok_or_else(|| invalid(ctx, "key", "an env_file target needs a key"))?;
        return Ok(Target::EnvFile {
            path: PathBuf::from(path),
            key,
        });
    }
    if let Some(cmd) = m.get("command").filter(|v| !v.is_unit()) {
        return Ok(Target::Command(program_of(ctx, cmd)?));
    }
    if let Some(path) = text("vault") {
        return Ok(Target::Vault(vault_target(ctx, &path, m, false)?));
    }
    if let Some(name) = text("k8s_secret") {
        let ns = text("k8s_namespace").ok_or_else(|| {
            invalid(
                ctx,
                "k8s_namespace",
                "a k8s_secret target needs k8s_namespace",
            )
        })?;
        return Ok(Target::K8s(k8s_target(ctx, &ns, &name, text("k8s_key"))?));
    }
    if let Some(id) = text("aws_secret_id") {
        return Ok(Target::Aws(aws_target(ctx, &id, text("aws_field"))?));
    }
    if let Some(repo) = text("github_repo") {
        let name = text("github_secret").ok_or_else(|| {
            invalid(
                ctx,
                "github_secret",
                "a github_repo target needs github_secret",
            )
        })?;
        return Ok(Target::Github(github_target(
            ctx,
            &repo,
            &name,
            text("github_environment"),
        )?));
    }
    Err(invalid(
        ctx,
        "target",
        "a target is #{file: PATH}, #{env_file: PATH, key: KEY}, #{command: CMD}, #{vault: PATH, mount, field}, \
         #{k8s_namespace, k8s_secret, k8s_key}, #{github_repo, github_secret, github_environment} or #{aws_secret_id, aws_field}",
    ))
}

pub(super) fn k8s_target(
    ctx: &NativeCallContext,
    namespace: &str,
    name: &str,
    key: Option<String>,
) -> RhaiResultOf<crate::sinks::k8s::K8sTarget> {
    let t = crate::sinks::k8s::K8sTarget {
        namespace: namespace.to_string(),
        name: name.to_string(),
        key: key.unwrap_or_else(|| "MOTHERDUCK_TOKEN".into()),
    };
    t.check().map_err(|e| invalid(ctx, "name", e))?;
    Ok(t)
}

pub(super) fn aws_target(
    ctx: &NativeCallContext,
    secret_id: &str,
    field: Option<String>,
) -> RhaiResultOf<crate::sinks::aws::AwsTarget> {
    let t = crate::sinks::aws::AwsTarget {
        secret_id: secret_id.to_string(),
        field,
    };
    t.check().map_err(|e| invalid(ctx, "secret_id", e))?;
    Ok(t)
}

pub(super) fn github_target(
    ctx: &NativeCallContext,
    repo: &str,
    name: &str,
    environment: Option<String>,
) -> RhaiResultOf<crate::sinks::github::GithubTarget> {
    let t = crate::sinks::github::GithubTarget {
        repo: repo.to_string(),
        name: name.to_string(),
        environment,
    };
    t.check().map_err(|e| invalid(ctx, "name", e))?;
    Ok(t)
}

/// A Vault target: `path` with options `mount` (default `secret`), `field`
/// (default `token`) and `cas` (default `true`).
/// `strict`: `opts` are a script's options, where an unknown key is a mistake
/// (a target map carries other keys of its own).
pub(super) fn vault_target(
    ctx: &NativeCallContext,
    path: &str,
    opts: &Map,
    strict: bool,
) -> RhaiResultOf<crate::sinks::vault::VaultTarget> {
    let text = |k: &str| opts.get(k).filter(|v| !v.is_unit()).map(|v| v.to_string());
    for k in opts.keys().filter(|_| strict) {
        if !["mount", "field", "cas"].contains(&k.as_str()) {
            return Err(invalid(
                ctx,
                "options",
                format!("unknown option {k:?} (known: mount, field, cas)"),
            ));
        }
    }
    let t = crate::sinks::vault::VaultTarget {
        mount: text("mount").unwrap_or_else(|| "secret".into()),
        path: path.to_string(),
        field: text("field").unwrap_or_else(|| "token".into()),
        cas: opts
            .get("cas")
            .and_then(|v| v.as_bool().ok())
            .unwrap_or(true),
    };
    t.check().map_err(|e| invalid(ctx, "path", e))?;
    Ok(t)
}
