//! Where a run's reports go and how they are written: the `--junit`, `--html`, `--json` (and
//! `--tap`) paths that `run` and `merge` share, checked before anything runs (distinct, writable) and
//! written atomically (a temporary file renamed), so that an interrupted or failed write never
//! leaves half a report; `-` puts a report on standard output and everything said on standard
//! error.

use std::fs;
use std::path::{Path, PathBuf};

use misdirect_core::outcome::{CaseResult, Exit};
use misdirect_core::report::{self, html, json, junit, tap};

use super::{Failure, STDOUT_IS_A_REPORT};

/// The reports of a run.
#[derive(Debug, clap::Args)]
pub(super) struct ReportPaths {
    /// Where to write the JUnit report (`-` for stdout; misdirect then talks on stderr).
    #[arg(long, default_value = "reports/junit.xml", value_name = "PATH")]
    pub(super) junit: PathBuf,
    /// Where to write the HTML report (every case with its evidence and transcript).
    #[arg(long, default_value = "reports/report.html", value_name = "PATH")]
    pub(super) html: PathBuf,
    /// Where to write the JSON report (`misdirect-report/1`: every case, finding and transcript).
    #[arg(long, default_value = "reports/report.json", value_name = "PATH")]
    pub(super) json: PathBuf,
    /// Also write a TAP 14 report here (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    pub(super) tap: Option<PathBuf>,
}

impl ReportPaths {
    /// The paths, and `also` (a baseline to write, say), checked up front.
    pub(super) fn check(&self, also: Option<&Path>) -> Result<(), Failure> {
        let mut paths = vec![
            self.junit.as_path(),
            self.html.as_path(),
            self.json.as_path(),
        ];
        paths.extend(self.tap.as_deref());
        paths.extend(also);
        check_report_paths(&paths)
    }

    /// Writes every report asked for.
    pub(super) fn write(
        &self,
        results: &[CaseResult],
        run: &report::Run<'_>,
        exit: Exit,
    ) -> Result<(), Failure> {
        write_reports(results, run, exit, &self.junit, &self.html)?;
        write_report(&self.json, &json::render(results, run, exit))?;
        match &self.tap {
            Some(path) => write_report(path, &tap::render(results, run)),
            None => Ok(()),
        }
    }

    /// Where they went, for the last lines a run prints.
    pub(super) fn said(&self) -> String {
        let tap = self
            .tap
            .as_ref()
            .map_or_else(String::new, |path| format!(", {} (TAP)", path.display()));
        format!(
            "reports: {} (JUnit), {} (HTML), {} (JSON){tap}",
            self.junit.display(),
            self.html.display(),
            self.json.display()
        )
    }
}

/// Writes a run's JUnit and HTML reports, a listed deviation marked in both.
pub(super) fn write_reports(
    results: &[CaseResult],
    run: &report::Run<'_>,
    exit: Exit,
    junit_path: &Path,
    html_path: &Path,
) -> Result<(), Failure> {
    write_report(junit_path, &junit::render(results, run))?;
    write_report(html_path, &html::render(results, run, exit))
}

/// The command line this process was started with, each word quoted for a POSIX shell where it
/// needs to be, so that a report tells its reader how to run it again.
pub(super) fn command_line() -> String {
    std::env::args()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
            if plain {
                word
            } else {
                format!("'{}'", word.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn write_report(path: &Path, contents: &str) -> Result<(), Failure> {
    let failed = |error: std::io::Error| {
        Failure::harness(format!("failed to write {}: {error}", path.display()))
    };
    if path == Path::new("-") {
        use std::io::Write as _;
        return std::io::stdout()
            .lock()
            .write_all(contents.as_bytes())
            .map_err(failed);
    }
    let partial = partial_path(path);
    create_parent(path).map_err(failed)?;
    fs::write(&partial, contents)
        .and_then(|()| fs::rename(&partial, path))
        .map_err(|error| {
            let _ = fs::remove_file(&partial);
            failed(error)
        })
}

/// Checks before a run that its report paths are distinct and can be written, so that hours of
/// cases are not lost to a typo: each folder is created and a temporary file written there.
pub(super) fn check_report_paths(paths: &[&Path]) -> Result<(), Failure> {
    let absolute: Vec<PathBuf> = paths
        .iter()
        .map(|path| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
        .collect();
    for (index, path) in paths.iter().enumerate() {
        if absolute[..index].contains(&absolute[index]) {
            return Err(Failure::invalid(format!(
                "{} is given for two reports; each needs a path of its own",
                path.display()
            )));
        }
        if *path == Path::new("-") {
            STDOUT_IS_A_REPORT.store(true, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        let partial = partial_path(path);
        create_parent(path)
            .and_then(|()| fs::write(&partial, b""))
            .and_then(|()| fs::remove_file(&partial))
            .map_err(|error| {
                Failure::invalid(format!(
                    "cannot write a report to {}: {error}",
                    path.display()
                ))
            })?;
    }
    Ok(())
}

fn create_parent(path: &Path) -> std::io::Result<()> {
    match path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        Some(parent) => fs::create_dir_all(parent),
        None => Ok(()),
    }
}

/// The temporary file a report is written to before it takes its name.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    path.with_file_name(name)
}
