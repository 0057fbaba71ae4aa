//! `misdirect matrix`: every launched profile in `targets/` started, run and stopped in turn,
//! rendered as the servers × cases matrix with each server's reports as evidence.

use std::fs;
use std::path::PathBuf;

use crate::under_test::Target;
use misdirect_core::baseline;
use misdirect_core::outcome::{Exit, Tally};

use super::reports::{write_report, write_reports};
use super::run::{StopSignals, SuiteArgs, execute, plan};
use super::{Failure, runtime};

#[derive(Debug, clap::Args)]
pub(super) struct MatrixArgs {
    #[command(flatten)]
    pub(super) suites: SuiteArgs,
    /// Profiles to run (repeatable); default: every `targets/*.yaml` that is not a baseline.
    #[arg(long = "profile", value_name = "PATH")]
    pub(super) profiles: Vec<PathBuf>,
    /// Where launched servers get their working folders (config, PKI, server.log).
    #[arg(long, default_value = "reports/servers", value_name = "DIR")]
    pub(super) work_dir: PathBuf,
    /// Folder for the matrix (`README.md`, `index.html`) and the servers' HTML and JUnit reports.
    #[arg(long, default_value = "docs/matrix", value_name = "DIR")]
    pub(super) out: PathBuf,
    /// Deadline in seconds for each connection and each request.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub(super) timeout: f64,
}

/// Every profile in turn: started, run, stopped; a server that is missing or does not start is
/// a column that says why. Exit 0 once the matrix is written: the verdicts are in it.
pub(super) fn matrix(args: &MatrixArgs) -> Result<Exit, Failure> {
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
                    None,
                    false,
                );
                drop(server);
                let super::run::Executed {
                    results,
                    label,
                    wall,
                    stopped,
                } = executed?;
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
                    &args.out.join(Column::junit_file(&profile.server)),
                    &args.out.join(Column::report_file(&profile.server)),
                )?;
                say!(
                    "{}: {} in {:.2} s",
                    profile.server,
                    Tally::of(&results),
                    wall.as_secs_f64()
                );
                if let Some(signal) = stopped {
                    return Ok(signal);
                }
                (ColumnOutcome::Ran(results), version)
            }
        };
        columns.push(Column {
            server: profile.server.clone(),
            version,
            baseline: known.clone(),
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
