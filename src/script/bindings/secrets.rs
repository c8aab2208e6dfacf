//! `secrets::` — deliver a secret somewhere safe: a file, an env file, a command.

use super::targets::{aws_target, github_target, k8s_target, target_of, vault_target};
use crate::api::SecretString;
use crate::runtime::deliver::{Delivery, Target};
use crate::script::bindings::host;
use crate::script::bindings::process::program_of;
use crate::script::convert::RhaiResultOf;
use crate::script::convert::{check, invalid, script_error};
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};
use std::path::PathBuf;

/// A `Secret`, or a plain string the script already revealed.
pub fn secret_of(ctx: &NativeCallContext, v: &Dynamic) -> RhaiResultOf<SecretString> {
    if let Some(s) = v.read_lock::<SecretString>() {
        return Ok(s.clone());
    }
    if v.is_string() {
        return Ok(SecretString::new(
            v.clone().into_string().unwrap_or_default(),
        ));
    }
    Err(invalid(
        ctx,
        "secret",
        format!("expected a Secret or a string, got {}", v.type_name()),
    ))
}

fn delivered(d: Delivery, secret: &SecretString) -> Map {
    let mut out = Map::new();
    out.insert("sink".into(), d.label.into());
    out.insert("fingerprint".into(), secret.fingerprint().into());
    if let Some(id) = d.token_id {
        out.insert("token_id".into(), id.into());
    }
    if let Some(p) = d.previous {
        out.insert("previous".into(), Dynamic::from(p));
    }
    out
}

fn deliver(ctx: &NativeCallContext, target: Target, secret: &Dynamic) -> RhaiResultOf<Map> {
    let secret = secret_of(ctx, secret)?;
    let h = host(ctx)?;
    let d = check(ctx, h.deliver(&target, &secret))?;
    Ok(delivered(d, &secret))
}

#[export_module]
pub mod api {
    use super::*;

    /// Writes the secret (and a newline) to `path`: atomically (a temporary file
    /// renamed into place, an existing file keeps its owner and mode, a new one is
    /// 0600), then reads it back to check. The directory must exist. Returns
    /// `#{sink, fingerprint, token_id, previous}`: `previous` is the `Secret` the file
    /// held before (to put back if a rotation fails), when there was one.
    #[rhai_fn(return_raw, volatile)]
    pub fn to_file(ctx: NativeCallContext, path: &str, secret: Dynamic) -> RhaiResultOf<Map> {
        deliver(
            &ctx,
            Target::File {
                path: PathBuf::from(path),
                mkdir: false,
            },
            &secret,
        )
    }

    /// `to_file(path, secret)` with options `#{mkdir: true}`: create a missing
    /// directory (mode 0700) first.
    #[rhai_fn(name = "to_file", return_raw, volatile)]
    pub fn to_file_with(
        ctx: NativeCallContext,
        path: &str,
        secret: Dynamic,
        options: Map,
    ) -> RhaiResultOf<Map> {
        let mut mkdir = false;
        for (k, v) in &options {
            match k.as_str() {
                "mkdir" => {
                    mkdir = v
                        .as_bool()
                        .map_err(|_| invalid(&ctx, "mkdir", "mkdir must be true or false"))?
                }
                other => {
                    return Err(invalid(
                        &ctx,
                        other,
                        format!("unknown option {other:?} (expected mkdir)"),
                    ))
                }
            }
        }
        deliver(
            &ctx,
            Target::File {
                path: PathBuf::from(path),
                mkdir,
            },
            &secret,
        )
    }

    /// Sets one `KEY=value` entry in the env file at `path` (replacing the entry that
    /// sets KEY, or adding one). Every other line stays byte for byte; the entry keeps
    /// its `export ` prefix and line ending; the file keeps its owner and mode. Writers
    /// to one file take turns. Returns `#{sink, fingerprint, token_id, previous}` like `to_file`.
    #[rhai_fn(return_raw, volatile)]
    pub fn to_env_file(
        ctx: NativeCallContext,
        path: &str,
        key: &str,
        secret: Dynamic,
    ) -> RhaiResultOf<Map> {
        deliver(
            &ctx,
            Target::EnvFile {
                path: PathBuf::from(path),
                key: key.to_string(),
            },
            &secret,
        )
    }

    /// Writes the secret into field `token` of the HashiCorp Vault KV v2 secret at
    /// `path` under mount `secret`, keeping the secret's other fields: reads it,
    /// replaces the field, writes a new version with check-and-set against the
    /// version read, then reads it back. Configuration is Vault's: `VAULT_ADDR`,
    /// `VAULT_TOKEN` (or `~/.vault-token`), `VAULT_NAMESPACE`, `VAULT_CACERT`.
    /// Returns `#{sink, fingerprint, token_id, previous}` like `to_file`:
    /// `previous` is the field's earlier value (delivering it again undoes this).
    #[rhai_fn(name = "to_vault", return_raw, volatile)]
    pub fn to_vault(ctx: NativeCallContext, path: &str, secret: Dynamic) -> RhaiResultOf<Map> {
        let t = vault_target(&ctx, path, &Map::new(), true)?;
        deliver(&ctx, Target::Vault(t), &secret)
    }

    /// `to_vault(path, secret)` with options `#{mount: "secret", field: "token",
    /// cas: true}`: the KV v2 mount, the field the secret goes in, and whether
    /// the write checks the version it read (turn off only for a mount
    /// configured to refuse check-and-set).
    #[rhai_fn(name = "to_vault", return_raw, volatile)]
    pub fn to_vault_with(
        ctx: NativeCallContext,
        path: &str,
        secret: Dynamic,
        options: Map,
    ) -> RhaiResultOf<Map> {
        let t = vault_target(&ctx, path, &options, true)?;
        deliver(&ctx, Target::Vault(t), &secret)
    }

    /// Puts the secret in key `MOTHERDUCK_TOKEN` of Kubernetes Secret `name` in
    /// `namespace`, keeping its other keys: a JSON merge patch that carries the
    /// `resourceVersion` read (a concurrent change is a conflict, not a lost
    /// update), then a read back; a Secret that does not exist is created. In a
    /// pod it uses the pod's service account; elsewhere `MDOPS_K8S_SERVER`,
    /// `MDOPS_K8S_TOKEN_FILE` and `MDOPS_K8S_CA_FILE`. Returns `#{sink,
    /// fingerprint, token_id, previous}`: `previous` is the key's earlier value.
    #[rhai_fn(name = "to_k8s", return_raw, volatile)]
    pub fn to_k8s(
        ctx: NativeCallContext,
        namespace: &str,
        name: &str,
        secret: Dynamic,
    ) -> RhaiResultOf<Map> {
        let t = k8s_target(&ctx, namespace, name, None)?;
        deliver(&ctx, Target::K8s(t), &secret)
    }

    /// `to_k8s(namespace, name, secret)` with options `#{key: "MOTHERDUCK_TOKEN"}`.
    #[rhai_fn(name = "to_k8s", return_raw, volatile)]
    pub fn to_k8s_with(
        ctx: NativeCallContext,
        namespace: &str,
        name: &str,
        secret: Dynamic,
        options: Map,
    ) -> RhaiResultOf<Map> {
        for k in options.keys() {
            if k.as_str() != "key" {
                return Err(invalid(
                    &ctx,
                    "options",
                    format!("unknown option {k:?} (known: key)"),
                ));
            }
        }
        let key = options
            .get("key")
            .filter(|v| !v.is_unit())
            .map(|v| v.to_string());
        let t = k8s_target(&ctx, namespace, name, key)?;
        deliver(&ctx, Target::K8s(t), &secret)
    }

    /// Puts the secret into AWS Secrets Manager secret `secret_id` (created when
    /// missing) as its whole SecretString: `PutSecretValue` with a
    /// `ClientRequestToken` derived from the token (a repeated request is the same
    /// version), then a read back. The new version becomes AWSCURRENT, the one
    /// before AWSPREVIOUS; delivering the AWSPREVIOUS value again moves
    /// AWSCURRENT back to it. Credentials, region and endpoint from the standard
    /// environment variables and `~/.aws` files (`AWS_PROFILE`,
    /// `AWS_ENDPOINT_URL`). Returns `#{sink, fingerprint, token_id, previous}`.
    #[rhai_fn(name = "to_aws", return_raw, volatile)]
    pub fn to_aws(ctx: NativeCallContext, secret_id: &str, secret: Dynamic) -> RhaiResultOf<Map> {
        let t = aws_target(&ctx, secret_id, None)?;
        deliver(&ctx, Target::Aws(t), &secret)
    }

    /// `to_aws(secret_id, secret)` with options `#{field: "token"}`: one field of a
    /// JSON secret, the other fields kept.
    #[rhai_fn(name = "to_aws", return_raw, volatile)]
    pub fn to_aws_with(
        ctx: NativeCallContext,
        secret_id: &str,
        secret: Dynamic,
        options: Map,
    ) -> RhaiResultOf<Map> {
        for k in options.keys() {
            if k.as_str() != "field" {
                return Err(invalid(
                    &ctx,
                    "options",
                    format!("unknown option {k:?} (known: field)"),
                ));
            }
        }
        let field = options
            .get("field")
            .filter(|v| !v.is_unit())
            .map(|v| v.to_string());
        let t = aws_target(&ctx, secret_id, field)?;
        deliver(&ctx, Target::Aws(t), &secret)
    }

    /// Stores the secret as GitHub Actions secret `name` of `repo`
    /// (`OWNER/NAME`): sealed to the repository's public key (libsodium's
    /// sealed box), then checked (the secret's `updated_at` moved). GitHub never
    /// shows a secret again, so there is no read-back of the value and no
    /// `previous`: it cannot be put back. `GITHUB_TOKEN` must be allowed to write
    /// the repository's Actions secrets; `GITHUB_API_URL` for GitHub Enterprise.
    #[rhai_fn(name = "to_github", return_raw, volatile)]
    pub fn to_github(
        ctx: NativeCallContext,
        repo: &str,
        name: &str,
        secret: Dynamic,
    ) -> RhaiResultOf<Map> {
        let t = github_target(&ctx, repo, name, None)?;
        deliver(&ctx, Target::Github(t), &secret)
    }

    /// `to_github(repo, name, secret)` with options `#{environment: "prod"}`: an
    /// environment's secret instead of the repository's.
    #[rhai_fn(name = "to_github", return_raw, volatile)]
    pub fn to_github_with(
        ctx: NativeCallContext,
        repo: &str,
        name: &str,
        secret: Dynamic,
        options: Map,
    ) -> RhaiResultOf<Map> {
        for k in options.keys() {
            if k.as_str() != "environment" {
                return Err(invalid(
                    &ctx,
                    "options",
                    format!("unknown option {k:?} (known: environment)"),
                ));
            }
        }
        let env = options
            .get("environment")
            .filter(|v| !v.is_unit())
            .map(|v| v.to_string());
        let t = github_target(&ctx, repo, name, env)?;
        deliver(&ctx, Target::Github(t), &secret)
    }

    /// Runs `command` with the secret on its standard input (never in its arguments
    /// or environment): a string runs through `sh -c`; an array `[program, arg, ...]`
    /// is executed directly, without a shell. A non-zero exit, or running past the
    /// command timeout (`--command-timeout`), is an error carrying its stderr (redacted).
    #[rhai_fn(name = "to_command", return_raw, volatile)]
    pub fn to_command(
        ctx: NativeCallContext,
        command: Dynamic,
        secret: Dynamic,
    ) -> RhaiResultOf<Map> {
        let program = program_of(&ctx, &command)?;
        deliver(&ctx, Target::Command(program), &secret)
    }

    /// Runs `command` (a string through `sh -c`, or an array without a shell) with the
    /// secret in environment variable `env_key` (for a check such as "can the workload
    /// connect with this token?"). Returns `#{ok, status, stdout, stderr}` with known
    /// secrets redacted from the output.
    #[rhai_fn(return_raw, volatile)]
    pub fn check_command(
        ctx: NativeCallContext,
        command: Dynamic,
        env_key: &str,
        secret: Dynamic,
    ) -> RhaiResultOf<Map> {
        let secret = secret_of(&ctx, &secret)?;
        let program = program_of(&ctx, &command)?;
        crate::sinks::check_env_name(env_key).map_err(|e| invalid(&ctx, "env_key", e))?;
        let h = host(&ctx)?;
        let outcome = check(
            &ctx,
            h.run_command("run check", program, vec![(env_key.to_string(), secret)]),
        )?;
        Ok(crate::script::bindings::process::outcome_map(
            outcome.as_ref(),
            h.options.command_timeout,
        ))
    }

    /// The identity of a target (`#{file}`, `#{env_file, key}` or `#{command}`), as
    /// deliveries compare them: absolute paths with links resolved. Two targets with
    /// the same identity are one place.
    #[rhai_fn(return_raw, volatile)]
    pub fn target_id(ctx: NativeCallContext, target: Map) -> RhaiResultOf<String> {
        Ok(target_of(&ctx, &target)?.identity())
    }

    /// The targets (named as `secrets::target_id` names them) that hold token
    /// `token_id` as far as this install knows: where mdops delivered it, with
    /// nothing delivered there since. A rotation checks that the successor goes
    /// where the workload reads the current token.
    #[rhai_fn(return_raw, volatile)]
    pub fn targets_of(ctx: NativeCallContext, token_id: &str) -> RhaiResultOf<Array> {
        let h = host(&ctx)?;
        let targets = check(&ctx, h.targets_of(token_id))?;
        Ok(targets.into_iter().map(Dynamic::from).collect())
    }

    /// Checks, before anything is minted, that each target can take its secret:
    /// no two entries go to the same place, every file's directory exists and is
    /// writable, nothing in a file's place is a link or a special file, and an env
    /// file can be edited safely (its key set at most once, to a literal value). `targets` is an array of `#{label, file, mkdir}`, `#{label, env_file, key}`
    /// or `#{label, command}` (`label` names the token, for the message). Fails as a usage
    /// error (exit 2) listing every problem.
    #[rhai_fn(return_raw, volatile)]
    pub fn check_targets(ctx: NativeCallContext, targets: Array) -> RhaiResultOf<()> {
        let mut seen: std::collections::HashMap<String, String> = Default::default();
        let mut problems = Vec::new();
        for t in &targets {
            let Some(m) = t.read_lock::<Map>().map(|m| m.clone()) else {
                return Err(invalid(&ctx, "targets", "each target is a map"));
            };
            let who = m
                .get("label")
                .map(|v| v.to_string())
                .unwrap_or_else(|| "a token".into());
            let target = target_of(&ctx, &m)?;
            if let Err(e) = host(&ctx)?.check_target(&target) {
                problems.push(format!("{who}: {e}"));
            }
            if let Some(other) = seen.insert(target.identity(), who.clone()) {
                problems.push(format!(
                    "{other} and {who} would both go to {}: give each token group its own target (use {{name}} in the template)",
                    target.label()
                ));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(script_error(
            &ctx,
            "usage",
            format!(
                "refusing to mint anything: {}",
                problems
                    .iter()
                    .map(|p| crate::output::escape(p).into_owned())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ))
    }
}
