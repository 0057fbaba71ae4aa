//! The command line: flags → what to run, and the exit code contract.
//!
//! Exit codes (documented in README.md): 0 no FAIL and no ERROR; 1 at least one FAIL; 2 at least
//! one ERROR and no FAIL; 3 invalid input (arguments or scenario files).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::client::tls::{ClientIdentity, Roots, Trust};
use crate::embedded::EmbeddedTarget;
use crate::pki::Pki;
use crate::runner::{self, RunOptions, Runner};
use crate::under_test::{Remote, Target};
use misdirect_core::baseline;
use misdirect_core::deployment::{Deployment, Role};
use misdirect_core::fault::Fault;
use misdirect_core::outcome::{Exit, Tally};
use misdirect_core::protocol::Protocol;
use misdirect_core::report::{html, junit, terminal};
use misdirect_core::scenario::{self, Scenario};

/// Prints a line to stdout; a closed stdout (`misdirect list | head`) is not an error worth a
/// panic, and the reports are written regardless.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// As [`say!`], without the newline.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Conformance harness for 421 Misdirected Request and HTTP connection reuse.
#[derive(Debug, Parser)]
#[command(name = "misdirect", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the suites against a target and write the reports.
    Run(Box<RunArgs>),
    /// List scenario IDs with their protocols and requirement IDs.
    List(SuiteArgs),
    /// List the faults of the embedded target, one per line: name, actor, description.
    Faults,
    /// Run the embedded target standalone and show how to point curl at it.
    Serve(ServeArgs),
    /// Time fresh connections (handshake + one request) to the embedded target, per protocol.
    Bench(BenchArgs),
    /// Run the suites against every server profile that can start here and write the results
    /// matrix (Markdown and HTML), each cell linked to its evidence in the server's reports.
    Matrix(MatrixArgs),
    /// Write the generated PKI as PEM, to configure a real server with it.
    Certs {
        /// Folder to write into (private keys get mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct SuiteArgs {
    /// Scenario file or folder (repeatable); default: ./suites.
    #[arg(long = "suite", value_name = "PATH")]
    suites: Vec<PathBuf>,
    /// Only scenarios whose ID matches this glob, e.g. 'server/mtls-*' (repeatable).
    #[arg(long = "filter", value_name = "GLOB")]
    filters: Vec<String>,
    /// Only these protocols (repeatable): h1, h2.
    #[arg(long = "protocol", value_name = "PROTOCOL")]
    protocols: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    suites: SuiteArgs,
    /// `embedded`, `embedded:<fault>`, the address of your server (IP:PORT), or a target
    /// profile (`targets/<server>.yaml`), which misdirect may start and stop itself.
    #[arg(long, default_value = "embedded")]
    target: String,
    /// Test an HTTP client instead: a command run with `sh -c` for each client case, with
    /// placeholders {urls} {resolve} {ca} {port} {protocol}; e.g.
    /// 'curl --http2 -s -o /dev/null --cacert {ca} {resolve} {urls}'.
    #[arg(long, value_name = "COMMAND", conflicts_with = "target")]
    client: Option<String>,
    /// For a server of yours: folder with ca.pem, client.pem and client.key (see `misdirect certs`).
    #[arg(long, value_name = "DIR")]
    certs: Option<PathBuf>,
    /// For a server of yours, instead of --certs: `system` (the system's trust store) or a PEM
    /// file with the CA that issued its certificates.
    #[arg(long, value_name = "system|FILE", conflicts_with = "certs")]
    trust: Option<String>,
    /// With --trust: the client certificate (PEM) the mTLS tenant accepts; without it, cases
    /// that need the mTLS tenant SKIP.
    #[arg(long, value_name = "PEM", requires_all = ["trust", "client_key"])]
    client_cert: Option<PathBuf>,
    /// The key of --client-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// For a server of yours: the UDP port of its HTTP/3 endpoint (without it, HTTP/3 cases SKIP).
    #[arg(long, value_name = "PORT")]
    h3_port: Option<u16>,
    /// For a gateway of yours: run the tenants' mock upstreams on 127.0.0.1 from this port on
    /// (alpha, bravo, charlie, delta, echo); without it, gateway cases SKIP.
    #[arg(long, value_name = "PORT")]
    upstreams_port: Option<u16>,
    /// The mock upstreams speak cleartext HTTP/1.1 instead of HTTPS.
    #[arg(long, requires = "upstreams_port")]
    upstreams_cleartext: bool,
    /// For a server of yours: map a role onto one of its hostnames, e.g. primary=a.example.com (repeatable).
    #[arg(long = "name", value_name = "ROLE=HOST")]
    names: Vec<String>,
    /// Compare with a server's known deviations (default: the profile's `baseline`): exit 1 on
    /// a new FAIL, WARN or ERROR and on a listed case that now passes, 0 when the run matches.
    #[arg(long, value_name = "PATH")]
    baseline: Option<PathBuf>,
    /// Write this run's FAIL, WARN and ERROR cases as a baseline to start from.
    #[arg(long, value_name = "PATH")]
    write_baseline: Option<PathBuf>,
    /// Where launched servers get their working folders (config, PKI, server.log).
    #[arg(long, default_value = "reports/servers", value_name = "DIR")]
    work_dir: PathBuf,
    /// Where to write the JUnit report.
    #[arg(long, default_value = "reports/junit.xml", value_name = "PATH")]
    junit: PathBuf,
    /// Where to write the HTML report (every case with its evidence and transcript).
    #[arg(long, default_value = "reports/report.html", value_name = "PATH")]
    html: PathBuf,
    /// Deadline in seconds for each connection and each request.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    timeout: f64,
    /// Cases run at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Treat WARN (a SHOULD not met) as failing: exit 1, as for a FAIL.
    #[arg(long)]
    strict: bool,
    /// Also list passing cases and print every transcript.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Debug, clap::Args)]
struct MatrixArgs {
    #[command(flatten)]
    suites: SuiteArgs,
    /// Profiles to run (repeatable); default: every `targets/*.yaml` that is not a baseline.
    #[arg(long = "profile", value_name = "PATH")]
    profiles: Vec<PathBuf>,
    /// Where launched servers get their working folders (config, PKI, server.log).
    #[arg(long, default_value = "reports/servers", value_name = "DIR")]
    work_dir: PathBuf,
    /// Folder for the matrix (`README.md`, `index.html`) and the servers' HTML and JUnit reports.
    #[arg(long, default_value = "docs/matrix", value_name = "DIR")]
    out: PathBuf,
    /// Deadline in seconds for each connection and each request.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    timeout: f64,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Connections timed per protocol (at most 20000).
    #[arg(long, default_value_t = 500)]
    connections: usize,
    /// Connections made first and not timed.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Protocols to time (repeatable): h1, h2, h3; default all.
    #[arg(long = "protocol", value_name = "PROTOCOL")]
    protocols: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Serve with this fault instead of correctly.
    #[arg(long)]
    fault: Option<String>,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Folder to write the CA and certificates into, for curl --cacert.
    #[arg(long, default_value = "certs", value_name = "DIR")]
    certs: PathBuf,
    /// Stop after this many seconds (default: on Ctrl-C).
    #[arg(long = "for", value_name = "SECONDS")]
    duration: Option<u64>,
}

/// An error that ends the command, with how it exits.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::InvalidInput,
            message: message.into(),
        }
    }

    fn harness(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Error,
            message: message.into(),
        }
    }
}

/// Parses the arguments; help and version print and end with 0, anything invalid with 3.
pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Cli, Failure> {
    Cli::try_parse_from(args).map_err(|error| {
        let exit = if error.use_stderr() {
            Exit::InvalidInput
        } else {
            Exit::Clean
        };
        Failure {
            exit,
            message: error.render().to_string(),
        }
    })
}

/// Runs a parsed command and returns how it exits.
pub fn run(cli: Cli) -> Result<Exit, Failure> {
    match cli.command {
        Command::Run(args) => run_suites(&args),
        Command::List(args) => {
            for scenario in select(&args)? {
                let protocols: Vec<&str> = scenario.protocols.iter().map(|p| p.key()).collect();
                let requirements: Vec<&str> = scenario
                    .requirements
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect();
                say!(
                    "{}\t{}\t{}",
                    scenario.id,
                    protocols.join(","),
                    requirements.join(",")
                );
            }
            Ok(Exit::Clean)
        }
        Command::Faults => {
            let width = Fault::ALL
                .iter()
                .map(|fault| fault.key().len())
                .max()
                .unwrap_or_default();
            for fault in Fault::ALL {
                say!(
                    "{:width$}  {:17}  {}",
                    fault.key(),
                    fault.actor().key(),
                    fault.description()
                );
            }
            Ok(Exit::Clean)
        }
        Command::Serve(args) => serve(&args),
        Command::Bench(args) => bench(&args),
        Command::Matrix(args) => matrix(&args),
        Command::Certs { out } => {
            let pki = Pki::generate().map_err(|error| Failure::harness(error.to_string()))?;
            for path in pki
                .write_pem(&out)
                .map_err(|error| Failure::harness(error.to_string()))?
            {
                say!("{}", path.display());
            }
            Ok(Exit::Clean)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::harness(format!("failed to start the async runtime: {error}")))
}

fn run_suites(args: &RunArgs) -> Result<Exit, Failure> {
    let (cases, options) = plan(&args.suites, args.timeout, args.concurrency)?;
    let runtime = runtime()?;
    let mut stop_signals = StopSignals::install(&runtime)?;
    let profile = profile_path(args)
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
        })
        .map(|path| baseline::load(&path).map_err(|error| Failure::invalid(error.to_string())))
        .transpose()?;
    let options = options.at_most(profile.as_ref().and_then(|profile| profile.concurrency));
    let (target, server) = match &profile {
        Some(profile) => launch_profile(args, profile)?,
        None => (parse_target(args)?, None),
    };
    let executed = execute(&runtime, &mut stop_signals, target, options, cases);
    drop(server);
    let (results, label, wall) = executed?;
    let detail = terminal::Detail {
        passes: args.verbose,
        transcripts: args.verbose,
    };
    say_raw!("{}", terminal::render(&results, &label, wall, detail));
    write_reports(&results, &label, baseline.as_ref(), &args.junit, &args.html)?;
    say!(
        "reports: {} (JUnit), {} (HTML)",
        args.junit.display(),
        args.html.display()
    );
    if let Some(path) = &args.write_baseline {
        let server = profile
            .as_ref()
            .map_or(label.as_str(), |profile| &profile.server);
        write_report(path, &baseline::from_results(server, &results))?;
        say!("baseline written: {}", path.display());
    }
    let tally = Tally::of(&results);
    let Some(baseline) = baseline else {
        return Ok(tally.exit(args.strict));
    };
    let comparison = baseline::compare(&baseline, &results);
    say!("{comparison}");
    Ok(if comparison.holds() {
        Exit::Clean
    } else {
        Exit::Failed
    })
}

/// Writes a run's JUnit and HTML reports, a listed deviation marked in both.
fn write_reports(
    results: &[misdirect_core::outcome::CaseResult],
    label: &str,
    baseline: Option<&baseline::Baseline>,
    junit_path: &Path,
    html_path: &Path,
) -> Result<(), Failure> {
    let xml = junit::render(results, label, baseline)
        .map_err(|error| Failure::harness(format!("failed to render the JUnit report: {error}")))?;
    write_report(junit_path, &xml)?;
    write_report(html_path, &html::render(results, label, baseline))
}

fn write_report(path: &Path, contents: &str) -> Result<(), Failure> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        fs::create_dir_all(parent).map_err(|error| {
            Failure::harness(format!("failed to create {}: {error}", parent.display()))
        })?;
    }
    fs::write(path, contents)
        .map_err(|error| Failure::harness(format!("failed to write {}: {error}", path.display())))
}

/// Loads the selected scenarios; broken files are invalid input.
fn select(args: &SuiteArgs) -> Result<Vec<Arc<Scenario>>, Failure> {
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
    let filter = globs(&args.filters)?;
    Ok(scenarios
        .into_iter()
        .filter(|scenario| filter.as_ref().is_none_or(|set| set.is_match(&scenario.id)))
        .map(Arc::new)
        .collect())
}

/// `./suites` when run from a checkout, else the suites this binary was built with.
fn default_suites() -> PathBuf {
    let local = PathBuf::from("suites");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("suites")
    }
}

fn globs(patterns: &[String]) -> Result<Option<GlobSet>, Failure> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern)
            .map_err(|error| Failure::invalid(format!("invalid --filter: {error}")))?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|error| Failure::invalid(format!("invalid --filter: {error}")))
}

fn protocols(keys: &[String]) -> Result<Vec<Protocol>, Failure> {
    keys.iter()
        .map(|key| key.parse().map_err(Failure::invalid))
        .collect()
}

/// The selected cases and the run options, or why they are invalid.
fn plan(
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
    let cases: Vec<_> = runner::cases(&scenarios)
        .into_iter()
        .filter(|case| protocols.is_empty() || protocols.contains(&case.protocol))
        .collect();
    if cases.is_empty() {
        return Err(Failure::invalid("no scenario matches the selection"));
    }
    let step_timeout = Duration::from_secs_f64(timeout);
    let options = RunOptions {
        step_timeout,
        case_timeout: step_timeout * 6,
        concurrency: concurrency.max(1),
    };
    Ok((cases, options))
}

/// Runs the cases against a target until they end or a stop signal arrives; returns the results,
/// the target's label and the wall time. The caller stops any server it started.
fn execute(
    runtime: &tokio::runtime::Runtime,
    stop_signals: &mut StopSignals,
    target: Target,
    options: RunOptions,
    cases: Vec<runner::Case>,
) -> Result<(Vec<misdirect_core::outcome::CaseResult>, String, Duration), Failure> {
    let runner = Arc::new(
        Runner::new(target, options).map_err(|error| Failure::harness(error.to_string()))?,
    );
    let started = Instant::now();
    let results = runtime.block_on(async {
        tokio::select! {
            results = runner.run_all(cases) => Some(results),
            () = stop_signals.received() => None,
        }
    });
    let results = results
        .ok_or_else(|| Failure::harness("interrupted; any server misdirect started was stopped"))?;
    Ok((results, runner.target().label(), started.elapsed()))
}

/// SIGINT and SIGTERM, registered as soon as this exists and remembered until read.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Registers the handlers before any server is started: a launched server runs in its own
    /// process group, so the terminal's Ctrl-C never reaches it, and misdirect must stop it.
    fn install(runtime: &tokio::runtime::Runtime) -> Result<Self, Failure> {
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

    async fn received(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// `--target` names a profile when it is a YAML file.
fn profile_path(args: &RunArgs) -> Option<&Path> {
    let path = Path::new(&args.target);
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    (args.client.is_none() && yaml).then_some(path)
}

/// Loads a profile and, if it says how, starts its server (stopped when the handle is dropped).
fn launch_profile(
    args: &RunArgs,
    profile: &crate::under_test::profile::Profile,
) -> Result<(Target, Option<crate::under_test::launcher::RunningServer>), Failure> {
    if args.certs.is_some()
        || args.trust.is_some()
        || !args.names.is_empty()
        || args.h3_port.is_some()
    {
        return Err(Failure::invalid(
            "--certs, --trust, --name and --h3-port are the profile's to say",
        ));
    }
    let (mut remote, server) = crate::under_test::launcher::prepare(profile, &args.work_dir)
        .map_err(|error| Failure::harness(error.to_string()))?;
    if let Some(port) = args.upstreams_port {
        remote.upstreams_port = Some(port);
        remote.upstreams_cleartext = args.upstreams_cleartext;
    }
    if let Some(server) = &server {
        say!(
            "started {}{} (process group {}) on {}",
            profile.server,
            server
                .version
                .as_deref()
                .map(|version| format!(" ({version})"))
                .unwrap_or_default(),
            server.pid(),
            remote.address
        );
    }
    Ok((Target::Remote(Box::new(remote)), server))
}

fn parse_target(args: &RunArgs) -> Result<Target, Failure> {
    if let Some(template) = &args.client {
        if !template.contains("{urls}") && !template.contains("{driver}") {
            return Err(Failure::invalid(
                "--client needs {urls} or {driver} in its command",
            ));
        }
        return Ok(Target::Command(crate::under_test::client::CommandClient {
            template: template.clone(),
        }));
    }
    if let Some(rest) = args.target.strip_prefix("embedded") {
        if args.certs.is_some()
            || args.trust.is_some()
            || !args.names.is_empty()
            || args.h3_port.is_some()
            || args.upstreams_port.is_some()
        {
            return Err(Failure::invalid(
                "--certs, --trust, --name and --h3-port apply to a server of yours, not to the embedded target",
            ));
        }
        return match rest.strip_prefix(':') {
            None if rest.is_empty() => Ok(Target::Embedded(None)),
            Some(fault) => fault
                .parse()
                .map(|fault| Target::Embedded(Some(fault)))
                .map_err(|error: misdirect_core::fault::UnknownFault| {
                    Failure::invalid(error.to_string())
                }),
            None => Err(Failure::invalid(format!(
                "unknown target `{}`",
                args.target
            ))),
        };
    }
    let address: SocketAddr = args.target.parse().map_err(|_| {
        Failure::invalid(format!(
            "unknown target `{}`: expected embedded, embedded:<fault> or IP:PORT",
            args.target
        ))
    })?;
    let trust = match (&args.certs, &args.trust) {
        (Some(folder), _) => Trust::certs_folder(folder),
        (None, Some(roots)) => Trust {
            roots: Roots::named(roots, Path::new("")),
            client_identity: args
                .client_cert
                .clone()
                .zip(args.client_key.clone())
                .map(|(certificate, key)| ClientIdentity { certificate, key }),
        },
        (None, None) => {
            return Err(Failure::invalid(
                "a server of yours needs --certs DIR (the CA to trust and the client certificate) \
                 or --trust system|FILE",
            ));
        }
    };
    let mut deployment = Deployment::standard();
    for mapping in &args.names {
        let (role, host) = mapping
            .split_once('=')
            .ok_or_else(|| Failure::invalid(format!("--name takes ROLE=HOST, not `{mapping}`")))?;
        let role: Role =
            role.parse()
                .map_err(|error: misdirect_core::deployment::UnknownRole| {
                    Failure::invalid(error.to_string())
                })?;
        deployment.set_name(role, host.to_owned());
    }
    Ok(Target::Remote(Box::new(Remote {
        server: None,
        address,
        h3_port: args.h3_port,
        upstreams_port: args.upstreams_port,
        upstreams_cleartext: args.upstreams_cleartext,
        deployment,
        trust,
        pki: None,
    })))
}

/// Every profile in turn: started, run, stopped; a server that is missing or does not start is
/// a column that says why. Exit 0 once the matrix is written: the verdicts are in it.
fn matrix(args: &MatrixArgs) -> Result<Exit, Failure> {
    use misdirect_core::report::matrix::{Column, ColumnOutcome};
    let (cases, options) = plan(&args.suites, args.timeout, 16)?;
    // Client scenarios judge HTTP clients, not servers: they have no cell here.
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|case| case.scenario.client.is_none())
        .collect();
    let mut paths = args.profiles.clone();
    if paths.is_empty() {
        let entries = fs::read_dir("targets")
            .map_err(|error| Failure::invalid(format!("cannot read targets/: {error}")))?;
        paths = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                let name = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .unwrap_or("");
                name.ends_with(".yaml") && !name.ends_with(".baseline.yaml")
            })
            .collect();
        paths.sort();
    }
    let mut profiles = paths
        .iter()
        .map(|path| {
            crate::under_test::profile::load(path)
                .map_err(|error| Failure::invalid(error.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    profiles.sort_by(|one, other| one.server.cmp(&other.server));
    let runtime = runtime()?;
    let mut stop_signals = StopSignals::install(&runtime)?;
    let mut columns = Vec::new();
    // Every baseline is read before any server starts, so a broken one stops nothing midway.
    let baselines = profiles
        .iter()
        .map(|profile| {
            profile
                .baseline
                .as_deref()
                .map(baseline::load)
                .transpose()
                .map_err(|error| Failure::invalid(error.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (profile, known) in profiles.iter().zip(&baselines) {
        let (outcome, version) = match crate::under_test::launcher::prepare(profile, &args.work_dir)
        {
            Err(error) => {
                let reason = error.to_string();
                let reason = reason.lines().next().unwrap_or("").to_owned();
                say!("{}: not run: {reason}", profile.server);
                (ColumnOutcome::NotRun(reason), None)
            }
            Ok((remote, server)) => {
                let version = server.as_ref().and_then(|server| server.version.clone());
                let executed = execute(
                    &runtime,
                    &mut stop_signals,
                    Target::Remote(Box::new(remote)),
                    options.at_most(profile.concurrency),
                    cases.clone(),
                );
                drop(server);
                let (results, label, wall) = executed?;
                write_reports(
                    &results,
                    &label,
                    known.as_ref(),
                    &args.out.join(Column::junit_file(&profile.server)),
                    &args.out.join(Column::report_file(&profile.server)),
                )?;
                say!(
                    "{}: {} in {:.2} s",
                    profile.server,
                    Tally::of(&results),
                    wall.as_secs_f64()
                );
                (ColumnOutcome::Ran(results), version)
            }
        };
        columns.push(Column {
            server: profile.server.clone(),
            version,
            outcome,
        });
    }
    let path = args.out.join("README.md");
    write_report(&path, &misdirect_core::report::matrix::render(&columns))?;
    let page = args.out.join("index.html");
    write_report(
        &page,
        &misdirect_core::report::matrix::render_html(&columns),
    )?;
    say!("matrix: {} and {}", path.display(), page.display());
    Ok(Exit::Clean)
}

fn serve(args: &ServeArgs) -> Result<Exit, Failure> {
    let fault = args.fault.as_deref().map(str::parse).transpose().map_err(
        |error: misdirect_core::fault::UnknownFault| Failure::invalid(error.to_string()),
    )?;
    let pki = Pki::generate().map_err(|error| Failure::harness(error.to_string()))?;
    pki.write_pem(&args.certs)
        .map_err(|error| Failure::harness(error.to_string()))?;
    runtime()?.block_on(async {
        let options = crate::embedded::StartOptions {
            port: args.port,
            ..Default::default()
        };
        let target = EmbeddedTarget::start_with(&pki, fault, options)
            .await
            .map_err(|error| Failure::harness(error.to_string()))?;
        let port = target.address().port();
        let ca = args.certs.join("ca.pem");
        say!(
            "embedded target{} listening on {} (HTTP/1.1 and HTTP/2 over TLS on TCP, HTTP/3 on the same UDP port)",
            fault.map(|fault| format!(" with fault {fault}")).unwrap_or_default(),
            target.address()
        );
        say!("roles: {}", role_table());
        say!("served on its own connection:");
        say!("  curl --cacert {} --resolve a.test:{port}:127.0.0.1 https://a.test:{port}/", ca.display());
        say!("misdirected (connection for a.test, request for c.test) gets 421:");
        say!(
            "  curl --cacert {} --resolve a.test:{port}:127.0.0.1 --http2 -H 'Host: c.test:{port}' https://a.test:{port}/",
            ca.display()
        );
        match args.duration {
            Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
            None => {
                say!("Ctrl-C stops it.");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        Ok(Exit::Clean)
    })
}

fn bench(args: &BenchArgs) -> Result<Exit, Failure> {
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

fn role_table() -> String {
    Role::ALL
        .iter()
        .map(|role| format!("{role}={}", role.standard_name()))
        .collect::<Vec<_>>()
        .join(" ")
}
