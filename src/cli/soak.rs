//! `misdirect soak`: load with every response verified, against any target `run` accepts, for
//! each protocol and shape asked for in turn; the verdicts go to the same terminal summary,
//! reports and exit code as a run's.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::client::tls::Credentials;
use crate::embedded::chaos::ChaosTarget;
use crate::embedded::upstream::Upstreams;
use crate::embedded::{EmbeddedTarget, StartOptions};
use crate::pki::Pki;
use crate::soak::{Aim, Live, Load};
use crate::under_test::Target;
use misdirect_core::deployment::Deployment;
use misdirect_core::outcome::{CaseResult, Exit, Tally};
use misdirect_core::protocol::Protocol;
use misdirect_core::report::{self, terminal};
use misdirect_core::soak::{Shape, SoakReport, SoakTally, Thresholds};

use super::reports::{ReportPaths, command_line, write_report};
use super::run::{StopSignals, hostname, now_utc, protocols};
use super::target::{TargetArgs, reach_server};
use super::{Failure, runtime};

#[derive(Debug, clap::Args)]
pub(super) struct SoakArgs {
    #[command(flatten)]
    pub(super) target: TargetArgs,
    /// Protocols to load, one after another (repeatable): h1, h2, h3; default h2.
    #[arg(long = "protocol", value_name = "PROTOCOL")]
    pub(super) protocols: Vec<String>,
    /// `streams`: long-lived connections carrying many requests; `churn`: a fresh connection
    /// per request (repeatable; default streams).
    #[arg(long = "shape", value_enum)]
    pub(super) shapes: Vec<ShapeArg>,
    /// Connections open at once (churn: being made at once), 1 to 1000.
    #[arg(long, default_value_t = 10)]
    pub(super) connections: usize,
    /// Requests in flight on each HTTP/2 or HTTP/3 connection, 1 to 1000 (HTTP/1.1: one).
    #[arg(long, default_value_t = 10)]
    pub(super) streams: usize,
    /// Seconds each soak lasts at most (0.1 to 86400).
    #[arg(long = "for", default_value_t = 10.0, value_name = "SECONDS")]
    pub(super) duration: f64,
    /// Stop each soak after this many requests, if sooner.
    #[arg(long, value_name = "COUNT")]
    pub(super) requests: Option<u64>,
    /// Requests per second over all connections (default: as fast as the target answers).
    #[arg(long, value_name = "PER_SECOND")]
    pub(super) rate: Option<f64>,
    /// Deadline in seconds for each handshake and each request.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub(super) timeout: f64,
    /// Percentage of requests for a connection's own name it may refuse before the soak WARNs.
    #[arg(long, default_value_t = 0.1, value_name = "PERCENT")]
    pub(super) max_spurious_refusals: f64,
    /// Percentage of requests and connections that may fail without an answer before the soak
    /// is an ERROR.
    #[arg(long, default_value_t = 1.0, value_name = "PERCENT")]
    pub(super) max_failures: f64,
    #[command(flatten)]
    pub(super) reports: ReportPaths,
    /// Where to write the soaks' tallies (`misdirect-soak/1`), which `misdirect merge` adds up
    /// across soaks run side by side, histograms included.
    #[arg(long, default_value = "reports/soak.json", value_name = "PATH")]
    pub(super) tallies: std::path::PathBuf,
    /// Treat WARN as failing: exit 1, as for a FAIL.
    #[arg(long)]
    pub(super) strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ShapeArg {
    Streams,
    Churn,
}

impl From<ShapeArg> for Shape {
    fn from(shape: ShapeArg) -> Self {
        match shape {
            ShapeArg::Streams => Self::Streams,
            ShapeArg::Churn => Self::Churn,
        }
    }
}

/// The target, started or reached, for the whole command: kept alive until the soaks end.
pub(super) enum Started {
    Embedded(EmbeddedTarget, Arc<Credentials>),
    Chaos(ChaosTarget, Arc<Credentials>),
    Remote {
        remote: Box<crate::under_test::Remote>,
        credentials: Arc<Credentials>,
        /// The tenants' mock upstreams a gateway proxies to, when it has some.
        _upstreams: Option<Upstreams>,
    },
}

impl Started {
    /// Where to send `protocol`, or why it cannot be.
    pub(super) fn aim(&self, protocol: Protocol) -> Result<Aim, String> {
        let (address, deployment, credentials) = match self {
            Self::Embedded(target, credentials) => {
                (target.address(), Deployment::standard(), credentials)
            }
            Self::Chaos(target, credentials) => {
                let address = match protocol {
                    Protocol::Http3 => target
                        .h3_port()
                        .map(|port| SocketAddr::new(target.address().ip(), port))
                        .ok_or("this chaos behaviour has no HTTP/3 endpoint")?,
                    _ => target.address(),
                };
                (address, Deployment::standard(), credentials)
            }
            Self::Remote {
                remote,
                credentials,
                ..
            } => {
                let address = match protocol {
                    Protocol::Http3 => remote
                        .h3_port
                        .map(|port| SocketAddr::new(remote.address.ip(), port))
                        .ok_or("the target has no HTTP/3 endpoint (--h3-port, or the profile's)")?,
                    _ => remote.address,
                };
                (address, remote.deployment.clone(), credentials)
            }
        };
        Ok(Aim {
            address,
            deployment,
            credentials: Arc::clone(credentials),
        })
    }
}

fn check(args: &SoakArgs) -> Result<(), Failure> {
    let within =
        |value: f64, low: f64, high: f64| value.is_finite() && (low..=high).contains(&value);
    if !(1..=1000).contains(&args.connections) || !(1..=1000).contains(&args.streams) {
        return Err(Failure::invalid(
            "--connections and --streams take 1 to 1000",
        ));
    }
    if !within(args.duration, 0.1, 86_400.0) || !within(args.timeout, 0.01, 600.0) {
        return Err(Failure::invalid(
            "--for takes 0.1 to 86400 seconds, --timeout 0.01 to 600",
        ));
    }
    if args
        .rate
        .is_some_and(|rate| !within(rate, 0.001, 10_000_000.0))
    {
        return Err(Failure::invalid(
            "--rate takes 0.001 to 10000000 per second",
        ));
    }
    if args.requests == Some(0) {
        return Err(Failure::invalid("--requests takes at least 1"));
    }
    if !within(args.max_spurious_refusals, 0.0, 100.0) || !within(args.max_failures, 0.0, 100.0) {
        return Err(Failure::invalid("thresholds are percentages, 0 to 100"));
    }
    Ok(())
}

pub(super) fn soak(args: &SoakArgs) -> Result<Exit, Failure> {
    check(args)?;
    let mut selected = protocols(&args.protocols)?;
    if selected.is_empty() {
        selected = vec![Protocol::Http2];
    }
    let shapes: Vec<Shape> = if args.shapes.is_empty() {
        vec![Shape::Streams]
    } else {
        args.shapes.iter().copied().map(Shape::from).collect()
    };
    let thresholds = Thresholds {
        max_spurious_refusals: args.max_spurious_refusals / 100.0,
        max_failures: args.max_failures / 100.0,
        ..Thresholds::default()
    };
    args.reports.check(Some(&args.tallies))?;
    let (target, server) = reach_server(&args.target)?;
    let label = target.label();
    let started_at = now_utc();
    let runtime = runtime()?;
    let mut stop_signals = StopSignals::install(&runtime)?;
    let began = Instant::now();
    let (judged, stopped) = runtime.block_on(async {
        let started = start(target, selected.contains(&Protocol::Http3)).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let all = async {
            let mut judged = Vec::new();
            for &protocol in &selected {
                for &shape in &shapes {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let load = Load {
                        protocol,
                        shape,
                        connections: args.connections,
                        streams: args.streams,
                        requests: args.requests,
                        duration: Duration::from_secs_f64(args.duration),
                        rate: args.rate,
                        deadline: Duration::from_secs_f64(args.timeout),
                    };
                    judged.push(one(&started, load, &thresholds, Arc::clone(&stop)).await);
                }
            }
            judged
        };
        // A signal stops the load; the soak under way still ends with what it counted.
        Ok::<_, Failure>(stop_signals.finish_or_stop(all, &stop).await)
    })?;
    let (results, tallies): (Vec<CaseResult>, Vec<Option<SoakTally>>) = judged.into_iter().unzip();
    let wall = began.elapsed();
    let server_version = server.as_ref().and_then(|server| server.version.clone());
    drop(server);
    say_raw!(
        "{}",
        terminal::render(
            &results,
            &label,
            wall,
            terminal::Detail {
                passes: true,
                transcripts: false,
            }
        )
    );
    let exit = stopped.unwrap_or_else(|| Tally::of(&results).exit(args.strict));
    let hostname = hostname();
    let command = command_line();
    let run = report::Run {
        target: &label,
        strict: args.strict,
        baseline: None,
        wall,
        started: Some(&started_at),
        hostname: hostname.as_deref(),
        server: server_version.as_deref(),
        command: Some(&command),
    };
    args.reports.write(&results, &run, exit)?;
    let tallies = SoakReport::new(&label, thresholds, tallies.into_iter().flatten().collect());
    write_report(
        &args.tallies,
        &serde_json::to_string(&tallies).map_err(|error| Failure::harness(error.to_string()))?,
    )?;
    say!(
        "{}, {} (tallies)",
        args.reports.said(),
        args.tallies.display()
    );
    Ok(exit)
}

/// Starts the embedded or chaos target, or prepares to reach a remote one.
pub(super) async fn start(target: Target, quic: bool) -> Result<Started, Failure> {
    let harness = |error: &dyn std::fmt::Display| Failure::harness(error.to_string());
    let reference = match &target {
        Target::Embedded(fault) => Some((*fault, StartOptions::default())),
        Target::Chaos(chaos) => chaos.reference_options().map(|options| (None, options)),
        Target::Remote(_) | Target::Command(_) => None,
    };
    let pki = || Pki::generate().map_err(|error| harness(&error));
    let credentials = |pki: &Pki| {
        Credentials::from_pki(pki)
            .map(Arc::new)
            .map_err(|error| harness(&error))
    };
    if let Some((fault, options)) = reference {
        let pki = pki()?;
        let options = StartOptions {
            tcp_only: !quic,
            ..options
        };
        let target = EmbeddedTarget::start_with(&pki, fault, options)
            .await
            .map_err(|error| harness(&error))?;
        return Ok(Started::Embedded(target, credentials(&pki)?));
    }
    match target {
        Target::Chaos(chaos) => {
            let pki = pki()?;
            let target = ChaosTarget::start(&pki, chaos)
                .await
                .map_err(|error| harness(&error))?;
            Ok(Started::Chaos(target, credentials(&pki)?))
        }
        Target::Remote(remote) => {
            // A gateway's upstreams present the certificates a launched gateway was configured
            // with; behind a gateway of yours, certificates of their own.
            let upstreams = match remote.upstreams_port {
                Some(first_port) => {
                    let pki = match &remote.pki {
                        Some(pki) => pki.clone(),
                        None => pki()?,
                    };
                    Some(
                        Upstreams::start_on(&pki, first_port, !remote.upstreams_cleartext)
                            .await
                            .map_err(|error| harness(&error))?,
                    )
                }
                None => None,
            };
            Ok(Started::Remote {
                credentials: Credentials::from_trust(&remote.trust)
                    .map(Arc::new)
                    .map_err(|error| harness(&error))?,
                remote,
                _upstreams: upstreams,
            })
        }
        // Invariant: the embedded target started above.
        Target::Embedded(_) => unreachable!("the embedded target is started above"),
        Target::Command(_) => Err(Failure::invalid("soak loads servers, not clients")),
    }
}

/// One soak: the load, live progress on a terminal, and its verdict.
async fn one(
    started: &Started,
    load: Load,
    thresholds: &Thresholds,
    stop: Arc<AtomicBool>,
) -> (CaseResult, Option<SoakTally>) {
    let title = format!(
        "{} over {}: {} for {:.1} s{}{}",
        match load.shape {
            Shape::Streams if load.protocol == Protocol::Http1 => format!(
                "{} keep-alive connections, one request at a time",
                load.connections
            ),
            Shape::Streams => format!(
                "{} connections × {} streams",
                load.connections, load.streams
            ),

            Shape::Churn => format!("{} connections at once, one request each", load.connections),
        },
        load.protocol.key(),
        "every response verified",
        load.duration.as_secs_f64(),
        load.requests
            .map(|count| format!(" or {count} requests"))
            .unwrap_or_default(),
        load.rate
            .map(|rate| format!(" at {rate}/s"))
            .unwrap_or_default(),
    );
    let aim = match started.aim(load.protocol) {
        Ok(aim) => aim,
        Err(reason) => {
            let skipped = misdirect_core::soak::skipped(load.protocol, load.shape, &title, &reason);
            return (skipped, None);
        }
    };
    let live = Arc::new(Live::default());
    let progress = Progress::start(&load, Arc::clone(&live));
    let (protocol, shape) = (load.protocol, load.shape);
    let mut tally = crate::soak::soak(aim, load, live, stop).await;
    tally.title = title;
    if let Some(progress) = progress {
        progress.finish();
    }
    say!("{} {}: {}", protocol.key(), shape, tally.figures());
    (misdirect_core::soak::judge(&tally, thresholds), Some(tally))
}

/// On a terminal, a line on standard error redrawn as the soak goes; nothing elsewhere.
struct Progress {
    bar: indicatif::ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(load: &Load, live: Arc<Live>) -> Option<Self> {
        let terminal = std::io::stderr().is_terminal()
            && std::env::var_os("TERM").is_none_or(|term| term != "dumb");
        if !terminal {
            return None;
        }
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        let label = format!("{} {}", load.protocol.key(), load.shape);
        let began = Instant::now();
        let drawn = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                let seconds = began.elapsed().as_secs_f64().max(0.001);
                let requests = live.requests.load(Ordering::Relaxed);
                drawn.set_message(format!(
                    "{label}  {seconds:.1} s  {requests} requests ({:.0}/s)  {} handshakes  \
                     421: {}  violations: {}  failed: {}",
                    requests as f64 / seconds,
                    live.handshakes.load(Ordering::Relaxed),
                    live.refused_421.load(Ordering::Relaxed),
                    live.violations.load(Ordering::Relaxed),
                    live.failed.load(Ordering::Relaxed),
                ));
                drawn.tick();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Some(Self { bar, task })
    }

    fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
