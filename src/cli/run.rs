//! `misdirect run`: which scenarios (`--suite`, `--filter`, `--protocol`),
//! against which target (embedded, an address, a profile misdirect may launch, a client command),
//! then the run under the stop signals, the reports and the baseline comparison.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::runner::{self, RunOptions, Runner};
use crate::under_test::Target;
use misdirect_core::baseline;
use misdirect_core::outcome::{Exit, Tally};
use misdirect_core::protocol::Protocol;
use misdirect_core::report::{self, terminal};
use misdirect_core::scenario::{self, Scenario};

use super::progress::Progress;
use super::reports::{ReportPaths, command_line, write_report};
use super::target::{TargetArgs, launch_profile, parse_target, profile_path};
use super::{Failure, runtime};

#[derive(Debug, clap::Args)]
pub(super) struct SuiteArgs {
    /// Scenario file or folder (repeatable); default: ./suites.
    #[arg(long = "suite", value_name = "PATH")]
    pub(super) suites: Vec<PathBuf>,
    /// Only scenarios whose ID matches this glob, e.g. 'server/mtls-*' (repeatable).
    #[arg(long = "filter", value_name = "GLOB")]
    pub(super) filters: Vec<String>,
    /// Leave out scenarios whose ID matches this glob, e.g. 'client/*' (repeatable); it wins
    /// over --filter.
    #[arg(long = "exclude", value_name = "GLOB")]
    pub(super) excludes: Vec<String>,
    /// Only shard M of N of the selected cases: `hash:M/N` (by case ID, stable as suites grow)
    /// or `count:M/N` (dealt in turn, even shards); for CI job matrices, merged afterwards.
    #[arg(long, value_name = "hash:M/N|count:M/N")]
    pub(super) partition: Option<String>,
    /// Only these protocols (repeatable): h1, h2, h3.
    #[arg(long = "protocol", value_name = "PROTOCOL")]
    pub(super) protocols: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    pub(super) suites: SuiteArgs,
    /// Test an HTTP client instead: a command run with `sh -c` for each client case, with
    /// placeholders {urls} {resolve} {ca} {port} {protocol} (h1, h2 or h3); e.g.
    /// 'curl --http2 -s -o /dev/null --cacert {ca} {resolve} {urls}'.
    #[arg(long, value_name = "COMMAND", conflicts_with = "spec")]
    pub(super) client: Option<String>,
    #[command(flatten)]
    pub(super) target: TargetArgs,
    /// Compare with a server's known deviations (default: the profile's `baseline`): exit 1 on
    /// a new FAIL, WARN or ERROR and on a listed case that now passes, 0 when the run matches.
    #[arg(long, value_name = "PATH")]
    pub(super) baseline: Option<PathBuf>,
    /// Write this run's FAIL, WARN and ERROR cases as a baseline to start from.
    #[arg(long, value_name = "PATH")]
    pub(super) write_baseline: Option<PathBuf>,
    #[command(flatten)]
    pub(super) reports: ReportPaths,
    /// Deadline in seconds for each connection and each request.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub(super) timeout: f64,
    /// Cases run at once.
    #[arg(long, default_value_t = 16)]
    pub(super) concurrency: usize,
    /// Treat WARN (a SHOULD not met) as failing: exit 1, as for a FAIL.
    #[arg(long)]
    pub(super) strict: bool,
    /// Append the TLS secrets of every connection to this file (NSS key log format), so that
    /// Wireshark can decrypt a capture of the run; without it, the file SSLKEYLOGFILE names.
    #[arg(long, value_name = "FILE")]
    pub(super) keylog: Option<PathBuf>,
    /// Also list passing cases and print every transcript.
    #[arg(long, short)]
    pub(super) verbose: bool,
    /// Colours: `auto` (on a terminal, unless NO_COLOR is set), `always` or `never`.
    #[arg(long, value_enum, default_value = "auto")]
    pub(super) color: Color,
}

pub(super) fn run_suites(args: &RunArgs) -> Result<Exit, Failure> {
    match args.color {
        Color::Auto => anstream::ColorChoice::Auto,
        Color::Always => anstream::ColorChoice::Always,
        Color::Never => anstream::ColorChoice::Never,
    }
    .write_global();
    let (cases, options) = plan(&args.suites, args.timeout, args.concurrency)?;
    let client = client_profile(args)?;
    let cases = match &client {
        Some(client) => client_cases(client, cases, !args.suites.protocols.is_empty())?,
        None => cases,
    };
    let runtime = runtime()?;
    let mut stop_signals = StopSignals::install(&runtime)?;
    let profile = profile_path(&args.target)
        .filter(|_| args.client.is_none())
        .map(|path| {
            crate::under_test::profile::load(path)
                .map_err(|error| Failure::invalid(error.to_string()))
        })
        .transpose()?;
    let baseline = args
        .baseline
        .clone()
        .or_else(|| {
            profile
                .as_ref()
                .and_then(|profile| profile.baseline.clone())
                .or_else(|| client.as_ref().and_then(|client| client.baseline.clone()))
        })
        .map(|path| baseline::load(&path).map_err(|error| Failure::invalid(error.to_string())))
        .transpose()?;
    let started = now_utc();
    args.reports.check(args.write_baseline.as_deref())?;
    let options = options.at_most(
        profile
            .as_ref()
            .and_then(|profile| profile.concurrency)
            .or_else(|| client.as_ref().and_then(|client| client.concurrency)),
    );
    let (target, server) = match (&profile, &client) {
        (Some(profile), _) => launch_profile(&args.target, profile)?,
        (None, Some(client)) => (Target::Command(client.command.clone()), None),
        (None, None) => match &args.client {
            Some(template) => (
                crate::under_test::client::CommandClient::parse(template)
                    .map(Target::Command)
                    .map_err(|why| Failure::invalid(format!("--client: {why}")))?,
                None,
            ),
            None => (parse_target(&args.target)?, None),
        },
    };
    let client_version = client
        .as_ref()
        .and_then(|client| client.version.as_deref())
        .and_then(crate::under_test::launcher::tool_version);
    let executed = execute(
        &runtime,
        &mut stop_signals,
        target,
        options,
        cases,
        args.keylog.as_deref(),
        true,
    );
    let server_version = server
        .as_ref()
        .and_then(|server| server.version.clone())
        .or(client_version);
    drop(server);
    let Executed {
        results,
        label,
        wall,
        stopped,
    } = executed?;
    let detail = terminal::Detail {
        passes: args.verbose,
        transcripts: args.verbose,
    };
    say_raw!("{}", terminal::render(&results, &label, wall, detail));
    // The exit is decided first: the reports say it too.
    let comparison = baseline
        .as_ref()
        .map(|baseline| baseline::compare(baseline, &results));
    let exit = match (stopped, &comparison) {
        (Some(signal), _) => signal,
        (None, Some(comparison)) if comparison.holds() => Exit::Clean,
        (None, Some(_)) => Exit::Failed,
        (None, None) => Tally::of(&results).exit(args.strict),
    };
    let hostname = hostname();
    let command = command_line();
    let report = report::Run {
        target: &label,
        strict: args.strict,
        baseline: baseline.as_ref(),
        wall,
        started: Some(&started),
        hostname: hostname.as_deref(),
        server: server_version.as_deref(),
        command: Some(&command),
    };
    args.reports.write(&results, &report, exit)?;
    say!("{}", args.reports.said());
    if let Some(path) = &args.write_baseline {
        let server = match (&profile, &client) {
            (Some(profile), _) => profile.server.as_str(),
            (None, Some(client)) => client.client.as_str(),
            (None, None) => label.as_str(),
        };
        write_report(path, &baseline::from_results(server, &results))?;
        say!("baseline written: {}", path.display());
    }
    if let Some(comparison) = &comparison {
        say!("{comparison}");
    }
    if exit == Exit::NothingTested {
        say!("nothing was tested: every case was SKIP (exit 4)");
    }
    Ok(exit)
}

/// The present moment in UTC as ISO 8601 (`2026-12-02T08:55:00Z`), for the reports.
pub(super) fn now_utc() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let of_era = shifted - era * 146_097;
    let year_of_era = (of_era - of_era / 1460 + of_era / 36_524 - of_era / 146_096) / 365;
    let day_of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// This machine's name, for the reports; `None` where the system does not say.
pub(super) fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

/// Loads the selected scenarios; broken files are invalid input.
pub(super) fn select(args: &SuiteArgs) -> Result<Vec<Arc<Scenario>>, Failure> {
    let paths = if args.suites.is_empty() {
        vec![default_suites()]
    } else {
        args.suites.clone()
    };
    let scenarios = scenario::load_paths(&paths).map_err(|errors| {
        let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Failure::invalid(format!(
            "{}\n{} scenario file(s) could not be loaded",
            rendered.join("\n\n"),
            errors.len()
        ))
    })?;
    let filter = globs(&args.filters, "--filter")?;
    let exclude = globs(&args.excludes, "--exclude")?;
    Ok(scenarios
        .into_iter()
        .filter(|scenario| filter.as_ref().is_none_or(|set| set.is_match(&scenario.id)))
        .filter(|scenario| {
            !exclude
                .as_ref()
                .is_some_and(|set| set.is_match(&scenario.id))
        })
        .map(Arc::new)
        .collect())
}

/// `./suites` when run from a checkout, else the suites this binary was built with.
pub(super) fn default_suites() -> PathBuf {
    let local = PathBuf::from("suites");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("suites")
    }
}

/// The glob set of `patterns` given with `flag`; `None` when there are none.
pub(super) fn globs(patterns: &[String], flag: &str) -> Result<Option<GlobSet>, Failure> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let invalid = |error: globset::Error| Failure::invalid(format!("invalid {flag}: {error}"));
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(Glob::new(pattern).map_err(invalid)?);
    }
    builder.build().map(Some).map_err(invalid)
}

pub(super) fn protocols(keys: &[String]) -> Result<Vec<Protocol>, Failure> {
    keys.iter()
        .map(|key| key.parse().map_err(Failure::invalid))
        .collect()
}

/// The cases of `--partition`'s shard, or all of them without one.
pub(super) fn partitioned(
    suites: &SuiteArgs,
    cases: Vec<runner::Case>,
) -> Result<Vec<runner::Case>, Failure> {
    let Some(text) = &suites.partition else {
        return Ok(cases);
    };
    let partition: misdirect_core::partition::Partition =
        text.parse()
            .map_err(|error: misdirect_core::partition::BadPartition| {
                Failure::invalid(error.to_string())
            })?;
    Ok(cases
        .into_iter()
        .enumerate()
        .filter(|(index, case)| {
            partition.keeps(
                *index,
                &misdirect_core::outcome::case_id(&case.scenario.id, case.protocol),
            )
        })
        .map(|(_, case)| case)
        .collect())
}

/// The selected cases and the run options, or why they are invalid.
pub(super) fn plan(
    suites: &SuiteArgs,
    timeout: f64,
    concurrency: usize,
) -> Result<(Vec<runner::Case>, RunOptions), Failure> {
    let scenarios = select(suites)?;
    let protocols = protocols(&suites.protocols)?;
    if !(timeout > 0.0 && timeout <= 600.0) {
        return Err(Failure::invalid(
            "--timeout must be between 0 and 600 seconds",
        ));
    }
    // The bounds a profile's `concurrency` has.
    if !(1..=1024).contains(&concurrency) {
        return Err(Failure::invalid("--concurrency is between 1 and 1024"));
    }
    let cases = partitioned(
        suites,
        runner::cases(&scenarios)
            .into_iter()
            .filter(|case| protocols.is_empty() || protocols.contains(&case.protocol))
            .collect(),
    )?;
    if cases.is_empty() {
        return Err(Failure::invalid("no scenario matches the selection"));
    }
    let step_timeout = Duration::from_secs_f64(timeout);
    let options = RunOptions {
        step_timeout,
        case_timeout: step_timeout * 6,
        concurrency,
    };
    Ok((cases, options))
}

/// What a run of the cases against one target gave.
pub(super) struct Executed {
    pub(super) results: Vec<misdirect_core::outcome::CaseResult>,
    pub(super) label: String,
    pub(super) wall: Duration,
    /// How the run was stopped, if a signal stopped it: the cases it cut short are ERROR.
    pub(super) stopped: Option<Exit>,
}

/// Runs the cases against a target until they end or a stop signal arrives, with a line per case
/// as it ends when `live`; the caller stops any server it started, and writes the reports
/// either way.
pub(super) fn execute(
    runtime: &tokio::runtime::Runtime,
    stop_signals: &mut StopSignals,
    target: Target,
    options: RunOptions,
    cases: Vec<runner::Case>,
    keylog: Option<&Path>,
    live: bool,
) -> Result<Executed, Failure> {
    let setup = |error: runner::SetupError| Failure::harness(error.to_string());
    let mut runner = Runner::new(target, options).map_err(setup)?;
    if let Some(path) = keylog {
        runner = runner.log_keys_to(path).map_err(setup)?;
    }
    let runner = Arc::new(runner);
    let started = Instant::now();
    let unreachable = runtime.block_on(runner.unreachable());
    if let Some(reason) = &unreachable {
        say!("{reason}: its HTTP/1.1 and HTTP/2 cases are ERROR without being run");
    }
    let mut stopped = None;
    // Each case's line as it ends, so that a slow run is never a blank screen.
    let progress = live.then(|| Progress::new(cases.len()));
    let finished = |result: &misdirect_core::outcome::CaseResult| {
        if let Some(progress) = &progress {
            progress.finished(result);
        }
    };
    let results = runtime.block_on(runner.run_until(
        cases,
        async {
            stopped = Some(stop_signals.received().await);
        },
        unreachable.as_deref(),
        &finished,
    ));
    drop(progress);
    if stopped.is_some() {
        say!("interrupted: the reports hold every finished case, the others as ERROR");
    }
    Ok(Executed {
        results,
        label: runner.target().label(),
        wall: started.elapsed(),
        stopped,
    })
}

/// SIGINT and SIGTERM, registered as soon as this exists and remembered until read.
pub(super) struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Registers the handlers before any server is started: a launched server runs in its own
    /// process group, so the terminal's Ctrl-C never reaches it, and misdirect must stop it.
    pub(super) fn install(runtime: &tokio::runtime::Runtime) -> Result<Self, Failure> {
        runtime
            .block_on(async { Self::new() })
            .map_err(|error| Failure::harness(format!("cannot handle signals: {error}")))
    }

    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for either signal; the exit it calls for.
    pub(super) async fn received(&mut self) -> Exit {
        tokio::select! {
            _ = self.interrupt.recv() => Exit::Interrupted,
            _ = self.terminate.recv() => Exit::Terminated,
        }
    }

    /// Runs `work` to its end. A signal on the way sets `stop`, which `work` heeds by ending
    /// early with what it has, and is the exit the command then calls for.
    pub(super) async fn finish_or_stop<T>(
        &mut self,
        work: impl Future<Output = T>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> (T, Option<Exit>) {
        tokio::pin!(work);
        tokio::select! {
            done = &mut work => (done, None),
            exit = self.received() => {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                (work.await, Some(exit))
            }
        }
    }
}

/// `--client` names a client profile when it is a YAML file: loaded, with its tools present.
fn client_profile(
    args: &RunArgs,
) -> Result<Option<crate::under_test::client_profile::ClientProfile>, Failure> {
    use crate::under_test::client_profile;
    let Some(path) = args
        .client
        .as_deref()
        .filter(|path| client_profile::is_profile(path))
    else {
        return Ok(None);
    };
    let client = client_profile::load(Path::new(path))
        .map_err(|error| Failure::invalid(error.to_string()))?;
    if let Some(tool) = crate::under_test::launcher::missing_tool(&client.needs) {
        return Err(Failure::harness(format!(
            "{}: `{tool}` is not installed (scripts/install-test-tools installs every client's tools)",
            client.client
        )));
    }
    Ok(Some(client))
}

/// A client profile's cases: its client scenarios, on the protocols it names unless
/// `--protocol` chose them.
pub(super) fn client_cases(
    client: &crate::under_test::client_profile::ClientProfile,
    cases: Vec<runner::Case>,
    protocols_chosen: bool,
) -> Result<Vec<runner::Case>, Failure> {
    let cases: Vec<runner::Case> = cases
        .into_iter()
        .filter(|case| case.scenario.client.is_some())
        .filter(|case| protocols_chosen || client.protocols.contains(&case.protocol))
        .collect();
    if cases.is_empty() {
        return Err(Failure::invalid(format!(
            "no client scenario matches the selection on {}'s protocols",
            client.client
        )));
    }
    Ok(cases)
}
