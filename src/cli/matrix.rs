//! `misdirect matrix`: every launched profile in `targets/` started, run and stopped in turn,
//! rendered as the servers × cases matrix, and every client profile in `clients/` run through
//! the client scenarios, rendered as the clients × client cases matrix, each column with its
//! reports as evidence.

use std::fs;
use std::path::{Path, PathBuf};

use crate::runner::{self, RunOptions};
use crate::under_test::Target;
use misdirect_core::baseline;
use misdirect_core::outcome::{Exit, Tally};
use misdirect_core::report::matrix::{Column, ColumnOutcome, Subjects};

use super::reports::{write_report, write_reports};
use super::run::{StopSignals, SuiteArgs, client_cases, execute, plan};
use super::{Failure, runtime};

#[derive(Debug, clap::Args)]
pub(super) struct MatrixArgs {
    #[command(flatten)]
    pub(super) suites: SuiteArgs,
    /// Server profiles to run (repeatable); default: every `targets/*.yaml` that is not a
    /// baseline. Naming only server profiles runs no client.
    #[arg(long = "profile", value_name = "PATH")]
    pub(super) profiles: Vec<PathBuf>,
    /// Client profiles to run (repeatable); default: every `clients/*.yaml` that is not a
    /// baseline. Naming only client profiles runs no server.
    #[arg(long = "client", value_name = "PATH")]
    pub(super) clients: Vec<PathBuf>,
    /// Where launched servers get their working folders (config, PKI, server.log).
    #[arg(long, default_value = "reports/servers", value_name = "DIR")]
    pub(super) work_dir: PathBuf,
    /// Folder for the matrix (`README.md`, `index.html`) and the servers' HTML and JUnit reports;
    /// the client matrix and the clients' reports go to its `clients` folder.
    #[arg(long, default_value = "docs/matrix", value_name = "DIR")]
    pub(super) out: PathBuf,
    /// Deadline in seconds for each connection and each request.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub(super) timeout: f64,
}

/// Every server profile, then every client profile, in turn: started (or run), judged, stopped;
/// a server or client that is missing or does not start is a column that says why. Exit 0 once
/// the matrices are written: the verdicts are in them.
pub(super) fn matrix(args: &MatrixArgs) -> Result<Exit, Failure> {
    let (cases, options) = plan(&args.suites, args.timeout, 16)?;
    // Naming only servers or only clients limits the run to them.
    let servers_wanted = !args.profiles.is_empty() || args.clients.is_empty();
    let clients_wanted = !args.clients.is_empty() || args.profiles.is_empty();
    let runtime = runtime()?;
    let mut run = Columns {
        runtime: &runtime,
        stop_signals: StopSignals::install(&runtime)?,
        options,
    };
    if servers_wanted {
        // Client scenarios judge HTTP clients, not servers: they have no cell here.
        let cases: Vec<_> = cases
            .iter()
            .filter(|case| case.scenario.client.is_none())
            .cloned()
            .collect();
        if let Some(stop) = server_matrix(args, &mut run, &cases)? {
            return Ok(stop);
        }
    }
    if clients_wanted && let Some(stop) = client_matrix(args, &mut run, &cases)? {
        return Ok(stop);
    }
    Ok(Exit::Clean)
}

/// The servers × cases matrix in `--out`; the exit a stop signal calls for, if one came.
fn server_matrix(
    args: &MatrixArgs,
    run: &mut Columns<'_>,
    cases: &[runner::Case],
) -> Result<Option<Exit>, Failure> {
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
    // Every baseline is read before any server starts, so a broken one stops nothing midway.
    let baselines = profiles
        .iter()
        .map(|profile| load_baseline(profile.baseline.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut columns = Vec::new();
    for (profile, known) in profiles.iter().zip(baselines) {
        let column = match crate::under_test::launcher::prepare(profile, &args.work_dir) {
            Err(error) => {
                let reason = error.to_string();
                let reason = reason.lines().next().unwrap_or("").to_owned();
                not_run(&profile.server, reason, known)
            }
            Ok((remote, server)) => {
                let version = server.as_ref().and_then(|server| server.version.clone());
                let subject = Subject {
                    name: &profile.server,
                    target: Target::Remote(Box::new(remote)),
                    concurrency: profile.concurrency,
                    version,
                    known,
                };
                let ran = run.column(subject, cases.to_vec(), &args.out);
                drop(server);
                match ran? {
                    Ok(column) => column,
                    Err(stop) => return Ok(Some(stop)),
                }
            }
        };
        columns.push(column);
    }
    write_matrix(&args.out, Subjects::Servers, &columns)?;
    Ok(None)
}

/// The clients × client cases matrix in `--out`/clients; the exit a stop signal calls for, if
/// one came.
fn client_matrix(
    args: &MatrixArgs,
    run: &mut Columns<'_>,
    cases: &[runner::Case],
) -> Result<Option<Exit>, Failure> {
    use crate::under_test::client_profile;
    let invalid = |error: misdirect_core::scenario::LoadError| Failure::invalid(error.to_string());
    let clients = if args.clients.is_empty() {
        client_profile::load_folder(Path::new("clients")).map_err(invalid)?
    } else {
        args.clients
            .iter()
            .map(|path| client_profile::load(path))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?
    };
    let baselines = clients
        .iter()
        .map(|client| load_baseline(client.baseline.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let out = args.out.join("clients");
    let mut columns = Vec::new();
    for (client, known) in clients.iter().zip(baselines) {
        if let Some(tool) = crate::under_test::launcher::missing_tool(&client.needs) {
            columns.push(not_run(
                &client.client,
                format!("`{tool}` is not installed"),
                known,
            ));
            continue;
        }
        let cases = client_cases(client, cases.to_vec(), !args.suites.protocols.is_empty())?;
        let version = client
            .version
            .as_deref()
            .and_then(crate::under_test::launcher::tool_version);
        let subject = Subject {
            name: &client.client,
            target: Target::Command(client.command.clone()),
            concurrency: client.concurrency,
            version,
            known,
        };
        match run.column(subject, cases, &out)? {
            Ok(column) => columns.push(column),
            Err(stop) => return Ok(Some(stop)),
        }
    }
    write_matrix(&out, Subjects::Clients, &columns)?;
    Ok(None)
}

fn load_baseline(path: Option<&Path>) -> Result<Option<baseline::Baseline>, Failure> {
    path.map(baseline::load)
        .transpose()
        .map_err(|error| Failure::invalid(error.to_string()))
}

fn not_run(name: &str, reason: String, known: Option<baseline::Baseline>) -> Column {
    say!("{name}: not run: {reason}");
    Column {
        name: name.to_owned(),
        version: None,
        baseline: known,
        outcome: ColumnOutcome::NotRun(reason),
    }
}

/// Writes a matrix as Markdown (`README.md`) and HTML (`index.html`) into `out`.
fn write_matrix(out: &Path, subjects: Subjects, columns: &[Column]) -> Result<(), Failure> {
    use misdirect_core::report::matrix::{render, render_html};
    let path = out.join("README.md");
    write_report(&path, &render(subjects, columns))?;
    let page = out.join("index.html");
    write_report(&page, &render_html(subjects, columns))?;
    say!("matrix: {} and {}", path.display(), page.display());
    Ok(())
}

/// One server or client to run for its column.
struct Subject<'a> {
    name: &'a str,
    target: Target,
    /// The profile's cap on cases at once, if it has one.
    concurrency: Option<usize>,
    version: Option<String>,
    known: Option<baseline::Baseline>,
}

/// What every column of a matrix run shares.
struct Columns<'a> {
    runtime: &'a tokio::runtime::Runtime,
    stop_signals: StopSignals,
    options: RunOptions,
}

impl Columns<'_> {
    /// Runs `cases` against one server or client and writes its reports into `out` as the
    /// evidence its cells link to; `Err` with the exit a stop signal calls for.
    fn column(
        &mut self,
        subject: Subject<'_>,
        cases: Vec<runner::Case>,
        out: &Path,
    ) -> Result<Result<Column, Exit>, Failure> {
        let Subject {
            name,
            target,
            concurrency,
            version,
            known,
        } = subject;
        let super::run::Executed {
            results,
            label,
            wall,
            stopped,
        } = execute(
            self.runtime,
            &mut self.stop_signals,
            target,
            self.options.at_most(concurrency),
            cases,
            None,
            false,
        )?;
        // Committed evidence: no timestamp or host name of whoever regenerated it.
        let report = misdirect_core::report::Run {
            target: &label,
            strict: false,
            baseline: known.as_ref(),
            wall,
            started: None,
            hostname: None,
            server: version.as_deref(),
            command: None,
        };
        let exit = known.as_ref().map_or_else(
            || Tally::of(&results).exit(false),
            |known| {
                if baseline::compare(known, &results).holds() {
                    Exit::Clean
                } else {
                    Exit::Failed
                }
            },
        );
        write_reports(
            &results,
            &report,
            exit,
            &out.join(Column::junit_file(name)),
            &out.join(Column::report_file(name)),
        )?;
        say!(
            "{name}: {} in {:.2} s",
            Tally::of(&results),
            wall.as_secs_f64()
        );
        if let Some(signal) = stopped {
            return Ok(Err(signal));
        }
        Ok(Ok(Column {
            name: name.to_owned(),
            version,
            baseline: known,
            outcome: ColumnOutcome::Ran(results),
        }))
    }
}
