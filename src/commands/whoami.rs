//! `mdops whoami`: what a run would use (profile, API URL, where the token
//! comes from, where state lives), then a live check of the token. Never the
//! token itself: its fingerprint at most.

use crate::context::{Context, OnSignal};
use crate::failure::{exit, Failure};
use crate::output::{out, Envelope, Format};
use crate::settings::Settings;
use serde_json::{json, Value};

pub fn whoami(settings: Settings, output: Format) -> Result<i32, Failure> {
    let mut facts = serde_json::Map::new();
    facts.insert(
        "profile".into(),
        json!(if settings.sandbox {
            "sandbox".to_string()
        } else {
            settings.profile.clone().unwrap_or_else(|| "default".into())
        }),
    );
    facts.insert(
        "api_url".into(),
        json!(if settings.sandbox {
            "built-in emulator (--sandbox)".to_string()
        } else {
            settings.api_url.to_string()
        }),
    );
    let source = if settings.sandbox {
        Some("the built-in emulator".to_string())
    } else {
        settings.token_source.clone()
    };
    facts.insert("token_from".into(), json!(source));
    facts.insert(
        "token".into(),
        json!(settings.token.as_ref().map(|t| t.redacted())),
    );
    facts.insert(
        "state".into(),
        json!(if settings.sandbox {
            "in memory (--sandbox)".to_string()
        } else if let Some(url) = &settings.state_url {
            format!(
                "{} (from {})",
                url.shown(),
                settings.state_source.clone().unwrap_or_default()
            )
        } else {
            crate::store::db_path(&settings.data_dir, settings.profile.as_deref())
                .display()
                .to_string()
        }),
    );
    facts.insert(
        "config".into(),
        json!(settings.config_path.display().to_string()),
    );
    let mut code = exit::OK;
    let mut error = None;
    // Shared state: can it be reached, and is its schema one this mdops knows?
    if let (Some(url), false) = (&settings.state_url, settings.sandbox) {
        match crate::store::Store::connect(url) {
            Ok(_) => {
                facts.insert("state_reachable".into(), json!(true));
            }
            Err(e) => {
                facts.insert("state_reachable".into(), json!(false));
                code = exit::USAGE;
                error = Some(e.0);
            }
        }
    }
    if settings.token.is_none() && !settings.sandbox {
        facts.insert("accepted".into(), Value::Null);
        code = exit::USAGE;
        error = Some(
            settings
                .require_token()
                .err()
                .unwrap_or_else(|| "no admin token".into()),
        );
    } else {
        let ctx = Context::new(settings, OnSignal::Run)?;
        let rt = ctx.runtime(ctx.options(), "whoami");
        let check = rt.check_admin();
        facts.insert("accepted".into(), json!(check.accepted));
        facts.insert("admin".into(), json!(check.admin));
        facts.insert("user_list".into(), json!(check.user_list));
        if let Some(e) = check.error {
            if error.is_none() {
                code = crate::failure::Kind::of_api(&e).code();
                error = Some(e.to_string());
            }
        }
    }
    let result = Value::Object(facts);
    match output {
        Format::Json => {
            let mut doc = Envelope::ok(result);
            if let Some(e) = &error {
                doc.ok = false;
                doc.error =
                    crate::output::error_value(e, code, crate::failure::kind_name(code), None);
            }
            out(&doc.render());
        }
        _ => out(&crate::output::Doc::value(result).render(Format::Text)),
    }
    if let Some(e) = error {
        eprintln!("error: {}", crate::output::escape(&e));
    }
    Ok(code)
}
