//! `mdops sim`: the emulator on 127.0.0.1, until Ctrl-C.

use crate::cli::SimArgs;
use crate::failure::{exit, Failure};
use crate::sim::{Behaviour, Seed, Sim};

pub fn sim(args: SimArgs) -> Result<i32, Failure> {
    let mut seed = match &args.seed {
        Some(path) => Seed::load(path).map_err(Failure::usage)?,
        None => Seed::demo(),
    };
    if args.no_users_endpoint {
        seed.users_endpoint = Some(false);
    }
    for (flag, rate) in [
        ("--error-rate", args.error_rate),
        ("--throttle-rate", args.throttle_rate),
        ("--drop-rate", args.drop_rate),
        ("--hang-rate", args.hang_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(Failure::usage(format!(
                "{flag} must be between 0 and 1, not {rate}"
            )));
        }
    }
    if args.error_rate + args.throttle_rate + args.drop_rate + args.hang_rate > 1.0 {
        return Err(Failure::usage("the fault rates add up to more than 1"));
    }
    let behaviour = Behaviour {
        latency: std::time::Duration::from_millis(args.latency_ms),
        jitter: std::time::Duration::from_millis(args.jitter_ms),
        faults: crate::sim::Faults {
            error_rate: args.error_rate,
            throttle_rate: args.throttle_rate,
            drop_rate: args.drop_rate,
            hang_rate: args.hang_rate,
            hang: std::time::Duration::from_secs(args.hang_secs),
            retry_after: args.retry_after,
            seed: args.fault_seed,
            scope: args.fault_scope.clone(),
            limit: args.fault_limit,
        },
        rate_limit: match args.rate_limit {
            Some(r) if !(r.is_finite() && r > 0.0) => {
                return Err(Failure::usage(format!(
                    "--rate-limit must be a positive number of requests per second, not {r}"
                )))
            }
            r => r,
        },
    };
    let rt = crate::context::tokio_runtime()?;
    let sim = rt
        .block_on(Sim::start(&seed, behaviour, args.port))
        .map_err(Failure::usage)?;
    let url = sim.url();
    let token_line = match &args.token_out {
        Some(path) => {
            crate::fsutil::write_private(path, format!("{}\n", sim.admin_token()).as_bytes())
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
            format!(
                "export MOTHERDUCK_ADMIN_TOKEN=\"$(cat {})\"",
                path.display()
            )
        }
        // The emulator's own token: it opens nothing but this process.
        None => format!("export MOTHERDUCK_ADMIN_TOKEN={}", sim.admin_token()),
    };
    crate::output::out(&format!(
        "MotherDuck API emulator listening on {url}\n  export MOTHERDUCK_API_BASE_URL={url}\n  {token_line}\nPress Ctrl-C to stop.\n"
    ));
    rt.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    drop(sim);
    Ok(exit::OK)
}
