//! The command line: flags → what to run; every command ends in the core's `Exit`, the exit-code
//! contract (documented in README.md): 0 no FAIL and no ERROR; 1 at least one FAIL; 2 at least
//! one ERROR and no FAIL; 3 invalid input (arguments or scenario files).
//!
//! One file a concern: `run` (running suites against a target: selection, the target, the
//! baseline), `target` (the options that name and reach a target), `address` (where a server
//! of yours is), `list`, `merge`, `matrix` (every profile in turn), `serve` (the embedded
//! target on its own), `bench`, `soak`, `audit` (a live edge from its URL), `progress` (the
//! live lines and bar), `reports` (where reports go and how they are written); this module
//! parses the flags and dispatches.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::pki::Pki;
use misdirect_core::deployment::Role;
use misdirect_core::fault::Fault;
use misdirect_core::outcome::Exit;

/// Prints a line to stdout; a closed stdout (`misdirect list | head`) is not an error worth a
/// panic, and the reports are written regardless.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($crate::cli::Said::new(), $($arg)*);
    }};
}

/// As [`say!`], without the newline.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($crate::cli::Said::new(), $($arg)*);
    }};
}

/// Whether a report goes to standard output (`--junit -`): then everything said goes to
/// standard error, so that the report stays a clean document.
static STDOUT_IS_A_REPORT: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Where [`say!`] writes: standard output, or standard error while a report takes standard
/// output.
pub(crate) struct Said;

impl Said {
    pub(crate) fn new() -> Self {
        Self
    }
}

impl std::fmt::Write for Said {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        use std::io::Write as _;
        // anstream keeps colours for a terminal and strips them for a pipe, a file, NO_COLOR
        // or `--color never`.
        let written = if STDOUT_IS_A_REPORT.load(std::sync::atomic::Ordering::Relaxed) {
            anstream::stderr().lock().write_all(text.as_bytes())
        } else {
            anstream::stdout().lock().write_all(text.as_bytes())
        };
        written.map_err(|_| std::fmt::Error)
    }
}

mod address;
mod audit;
mod bench;
mod list;
mod matrix;
mod merge;
mod progress;
mod reports;
mod run;
mod serve;
mod soak;
mod target;

use audit::AuditArgs;
use bench::{BenchArgs, bench};
use list::{ListArgs, list};
use matrix::{MatrixArgs, matrix};
use merge::{MergeArgs, merge};
use run::{RunArgs, run_suites};
use serve::{ServeArgs, serve};
use soak::SoakArgs;

/// Conformance harness for 421 Misdirected Request and HTTP connection reuse over HTTP/1.1
/// (h1), HTTP/2 (h2) and HTTP/3 (h3).
#[derive(Debug, Parser)]
#[command(
    name = "misdirect",
    version,
    about,
    after_help = "Protocols: h1 is HTTP/1.1 over TLS, h2 HTTP/2 over TLS (ALPN h2), h3 HTTP/3 over \
QUIC; every command that takes --protocol takes these three. Exit codes: 0 clean, 1 failed, \
2 error, 3 invalid input, 4 nothing tested, 130/143 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the suites against a target and write the reports.
    Run(Box<RunArgs>),
    /// List scenario IDs with their protocols (h1, h2, h3) and requirement IDs, or (--requirements) the
    /// requirements catalogue with the scenarios that cite each rule.
    List(ListArgs),
    /// List the faults of the embedded target, one per line: name, actor, description.
    Faults,
    /// List the chaos target's hostile behaviours (`--target chaos:<name>`): name, description.
    Chaos,
    /// List every check an expectation may state, by family: how it is written and what it asks.
    Checks,
    /// Combine the JSON reports of a run's partitions into the reports and exit code of the
    /// whole run.
    Merge(MergeArgs),
    /// Run the embedded target standalone (HTTP/1.1 and HTTP/2 over TLS on a TCP port, HTTP/3
    /// over QUIC on the same UDP port) and show how to point curl at it.
    Serve(ServeArgs),
    /// Time fresh connections (handshake + one request) to the embedded target, per protocol.
    Bench(BenchArgs),
    /// Load a target with many connections and streams for a bounded time or count, verifying
    /// every response: the right tenant, and 421 (or a refusal) exactly where required.
    Soak(Box<SoakArgs>),
    /// Audit a live edge from its URL alone: names its certificate does not cover must be
    /// refused on its connection (ideally with 421), names it covers must get what a fresh
    /// connection gets; over h2, h1, h3 (where advertised) and without SNI, politely.
    Audit(Box<AuditArgs>),
    /// Run the suites against every server profile that can start here and write the results
    /// matrix (Markdown and HTML), each cell linked to its evidence in the server's reports.
    Matrix(MatrixArgs),
    /// Print the JSON Schema of a scenario, profile or baseline file, for editors (e.g. the
    /// yaml-language-server's `$schema` comment) and validators.
    Schema {
        #[arg(value_enum)]
        file: SchemaFile,
    },
    /// Print a shell's completion script: e.g. `misdirect completions bash >
    /// ~/.local/share/bash-completion/completions/misdirect`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the generated PKI as PEM, to configure a real server with it.
    Certs {
        /// Folder to write into (private keys get mode 0600).
        #[arg(value_name = "DIR", required_unless_present = "out")]
        dir: Option<PathBuf>,
        /// The same folder, as an option.
        #[arg(long, value_name = "DIR", conflicts_with = "dir")]
        out: Option<PathBuf>,
    },
}

/// The kinds of file misdirect reads that people write.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SchemaFile {
    Scenario,
    Profile,
    /// A client profile (`clients/*.yaml`).
    Client,
    Baseline,
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
        Command::Merge(args) => merge(&args),
        Command::List(args) => list(&args),
        Command::Chaos => {
            use crate::embedded::chaos::Chaos;
            let width = Chaos::ALL
                .iter()
                .map(|chaos| chaos.name().len())
                .max()
                .unwrap_or_default();
            for chaos in Chaos::ALL {
                say!("{:width$}  {}", chaos.name(), chaos.description());
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
        Command::Checks => {
            for (family, checks) in misdirect_core::check::catalogue() {
                say!("{family}");
                for check in checks {
                    say!("  {}: {}", check.name, check.value);
                    say!("      {}", check.paragraph());
                }
            }
            Ok(Exit::Clean)
        }
        Command::Schema { file } => {
            let schema = match file {
                SchemaFile::Scenario => misdirect_core::schema::scenario(),
                SchemaFile::Profile => crate::under_test::profile::schema(),
                SchemaFile::Client => crate::under_test::client_profile::schema(),
                SchemaFile::Baseline => misdirect_core::schema::baseline(),
            };
            say!("{schema:#}");
            Ok(Exit::Clean)
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "misdirect",
                &mut script,
            );
            say_raw!("{}", String::from_utf8_lossy(&script));
            Ok(Exit::Clean)
        }
        Command::Serve(args) => serve(&args),
        Command::Bench(args) => bench(&args),
        Command::Soak(args) => soak::soak(&args),
        Command::Audit(args) => audit::audit(&args),
        Command::Matrix(args) => matrix(&args),
        Command::Certs { dir, out } => {
            let Some(folder) = dir.or(out) else {
                return Err(Failure::invalid("misdirect certs DIR: where to write them"));
            };
            let pki = Pki::generate().map_err(|error| Failure::harness(error.to_string()))?;
            for path in pki
                .write_pem(&folder)
                .map_err(|error| Failure::harness(error.to_string()))?
            {
                say!("{}", path.display());
            }
            Ok(Exit::Clean)
        }
    }
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::harness(format!("failed to start the async runtime: {error}")))
}

/// Writes a report atomically: into a temporary file beside it, then renamed over it, so that
/// a reader (or an interrupted run) never sees half a report.
pub(super) fn role_table() -> String {
    Role::ALL
        .iter()
        .map(|role| format!("{role}={}", role.standard_name()))
        .collect::<Vec<_>>()
        .join(" ")
}
