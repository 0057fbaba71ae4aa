//! `misdirect bench`: the per-connection cost against the embedded target, and (`--soak`)
//! `misdirect soak` beside h2load against the same target in the same shapes, so that the
//! price of verifying every response is a measured ratio.

use std::time::Duration;

use misdirect_core::outcome::Exit;
use misdirect_core::protocol::Protocol;

use crate::soak::Load;
use misdirect_core::deployment::Role;
use misdirect_core::soak::{Shape, SoakTally, Thresholds};

use super::run::protocols;
use super::target::{TargetArgs, reach_server};
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
    /// Instead: h2load and `misdirect soak` (every response verified) one after the other
    /// against the same target over HTTP/2, in two shapes: 10 connections × 10 streams for
    /// --for seconds, then --churn new connections opened at once with one request each.
    #[arg(long)]
    pub(super) soak: bool,
    /// With --soak: the target, as `run` takes it (default: the embedded target).
    #[command(flatten)]
    pub(super) target: TargetArgs,
    /// With --soak: seconds each tool loads the streams shape (1 to 600).
    #[arg(long = "for", default_value_t = 5, value_name = "SECONDS")]
    pub(super) duration: u64,
    /// With --soak: new connections opened at once, one request each, for each tool in the
    /// churn shape (1 to 1000; a server's connection limit bounds it: nginx's profiles allow
    /// 256, its upstream connections included).
    #[arg(long, default_value_t = 100, value_name = "COUNT")]
    pub(super) churn: u64,
}

pub(super) fn bench(args: &BenchArgs) -> Result<Exit, Failure> {
    if args.soak {
        return beside_h2load(args);
    }
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

/// One line of the comparison.
struct Row {
    shape: &'static str,
    tool: String,
    requests: u64,
    elapsed: Duration,
    handshakes: u64,
    /// misdirect's verdict on what it verified; h2load verifies nothing.
    verdict: Option<String>,
}

impl Row {
    fn rate(&self, count: u64) -> f64 {
        count as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn of_soak(shape: &'static str, tally: &SoakTally) -> Self {
        let judged = misdirect_core::soak::judge(tally, &Thresholds::default());
        Self {
            shape,
            tool: "misdirect soak".to_owned(),
            requests: tally.total().requests,
            elapsed: tally.wall,
            handshakes: tally.handshakes,
            verdict: Some(judged.verdict.to_string()),
        }
    }
}

/// `bench --soak`: each shape loaded by h2load, then by `misdirect soak`, against one target.
fn beside_h2load(args: &BenchArgs) -> Result<Exit, Failure> {
    if !(1..=600).contains(&args.duration) || !(1..=1000).contains(&args.churn) {
        return Err(Failure::invalid(
            "--for takes 1 to 600 seconds, --churn 1 to 1000 connections",
        ));
    }
    if crate::under_test::launcher::missing_tool(&["h2load".to_owned()]).is_some() {
        return Err(Failure::harness(
            "h2load is not installed (Debian's nghttp2-client; scripts/install-test-tools installs it)",
        ));
    }
    let (target, server) = reach_server(&args.target)?;
    let label = target.label();
    let rows = runtime()?.block_on(async {
        let started = super::soak::start(target, false).await?;
        let aim = started.aim(Protocol::Http2).map_err(Failure::harness)?;
        let url = format!(
            "https://{}:{}/soak",
            aim.deployment.name(Role::Primary),
            aim.address.port()
        );
        let connect_to = format!("--connect-to={}", aim.address);
        let deadline = Duration::from_secs(args.duration + 120);
        let h2load = |shape: &'static str, options: Vec<String>, handshakes: Option<u64>| {
            let mut all = options;
            all.extend([connect_to.clone(), url.clone()]);
            async move {
                let figures = crate::bench::h2load(&all, deadline)
                    .await
                    .map_err(|error| Failure::harness(error.to_string()))?;
                Ok::<_, Failure>(Row {
                    shape,
                    tool: "h2load".to_owned(),
                    requests: figures.succeeded,
                    elapsed: figures.elapsed,
                    handshakes: handshakes.unwrap_or(10),
                    verdict: (figures.failed > 0).then(|| format!("{} failed", figures.failed)),
                })
            }
        };
        let soak = |shape: Shape, connections: u64, requests: Option<u64>, duration: Duration| {
            let load = Load {
                protocol: Protocol::Http2,
                shape,
                connections: usize::try_from(connections).unwrap_or(1),
                streams: 10,
                requests,
                duration,
                rate: None,
                deadline: Duration::from_secs(5),
            };
            crate::soak::soak(aim.clone(), load, Default::default(), Default::default())
        };
        const STREAMS: &str = "10 connections x 10 streams";
        const CHURN: &str = "new connection per request";
        // The churn shape is a burst; the streams shape has ten connections.
        let seconds = args.duration;
        let mut rows = vec![
            h2load(
                STREAMS,
                vec!["-c10".into(), "-m10".into(), format!("-D{seconds}")],
                None,
            )
            .await?,
        ];
        let tally = soak(Shape::Streams, 10, None, Duration::from_secs(seconds)).await;
        rows.push(Row::of_soak(STREAMS, &tally));
        let churn = args.churn;
        rows.push(
            h2load(
                CHURN,
                vec![format!("-c{churn}"), format!("-n{churn}"), "-m1".into()],
                Some(churn),
            )
            .await?,
        );
        let tally = soak(Shape::Churn, churn, Some(churn), deadline).await;
        rows.push(Row::of_soak(CHURN, &tally));
        Ok::<_, Failure>(rows)
    })?;
    drop(server);
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    say!(
        "HTTP/2 against {label} ({build} build): h2load (no verification, one thread) and \
         misdirect soak (every response verified); churn: {} new connections opened at once, \
         one request each",
        args.churn
    );
    say!(
        "{:<28} {:<15} {:>9} {:>9} {:>11} {:>13} {:>7}  verdict",
        "shape",
        "tool",
        "requests",
        "seconds",
        "req/s",
        "handshakes/s",
        "ratio"
    );
    for pair in rows.chunks(2) {
        let baseline = pair[0].rate(pair[0].requests);
        for row in pair {
            say!(
                "{:<28} {:<15} {:>9} {:>9.2} {:>11.0} {:>13.0} {:>7.2}  {}",
                row.shape,
                row.tool,
                row.requests,
                row.elapsed.as_secs_f64(),
                row.rate(row.requests),
                row.rate(row.handshakes),
                row.rate(row.requests) / baseline.max(f64::EPSILON),
                row.verdict.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(Exit::Clean)
}
