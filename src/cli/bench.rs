//! `misdirect bench`: the per-connection cost against the embedded target, and (`--soak`)
//! `misdirect soak` beside h2load against the same target in the same shapes, so that the
//! price of verifying every response is a measured ratio.

use std::time::Duration;

use misdirect_core::outcome::Exit;
use misdirect_core::protocol::Protocol;

use super::run::protocols;
use super::{Failure, runtime};

#[derive(Debug, clap::Args)]
pub(super) struct BenchArgs {
    /// Connections timed per protocol (at most 20000).
    #[arg(long, default_value_t = 500)]
    pub(super) connections: usize,
    /// Connections made first and not timed.
    #[arg(long, default_value_t = 20)]
    pub(super) warmup: usize,
    /// Protocols to time (repeatable): h1, h2, h3; default all.
    #[arg(long = "protocol", value_name = "PROTOCOL")]
    pub(super) protocols: Vec<String>,
}

pub(super) fn bench(args: &BenchArgs) -> Result<Exit, Failure> {
    if !(1..=20_000).contains(&args.connections) || args.warmup > 20_000 {
        return Err(Failure::invalid(
            "--connections takes 1 to 20000, --warmup at most 20000",
        ));
    }
    let mut selected = protocols(&args.protocols)?;
    if selected.is_empty() {
        selected = Protocol::ALL.to_vec();
    }
    let measurements = runtime()?
        .block_on(crate::bench::measure(
            &selected,
            args.warmup,
            args.connections,
            Duration::from_secs(5),
        ))
        .map_err(|error| Failure::harness(error.to_string()))?;
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    say!(
        "fresh connection + one request to the embedded target on 127.0.0.1 ({build} build), {} timed after {} warm-up:",
        args.connections,
        args.warmup
    );
    say!(
        "{:<8} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "protocol",
        "median",
        "p10",
        "p90",
        "p99",
        "wall"
    );
    let ms = |duration: Duration| format!("{:>7.3} ms", duration.as_secs_f64() * 1000.0);
    for measurement in &measurements {
        say!(
            "{:<8} {} {} {} {} {:>7.3} s",
            measurement.protocol.key(),
            ms(measurement.quantile(0.5)),
            ms(measurement.quantile(0.1)),
            ms(measurement.quantile(0.9)),
            ms(measurement.quantile(0.99)),
            measurement.wall.as_secs_f64()
        );
    }
    Ok(Exit::Clean)
}
