//! `misdirect merge`: the JSON reports of a run's partitions (`--partition`, one per CI job)
//! combined into the reports, and the exit code, of the whole run; or the tallies of soaks run
//! side by side (`misdirect-soak/1`) added up and judged as one soak.

use std::path::PathBuf;
use std::time::Duration;

use misdirect_core::baseline;
use misdirect_core::outcome::{CaseResult, Exit, Tally};
use misdirect_core::report::{self, json};
use misdirect_core::soak;

use super::Failure;
use super::reports::{ReportPaths, command_line, write_report};

#[derive(Debug, clap::Args)]
pub(super) struct MergeArgs {
    /// The partitions' JSON reports (`--json` of each `misdirect run --partition`), or the
    /// tallies of soaks run side by side (`--tallies` of each `misdirect soak`).
    #[arg(required = true, value_name = "REPORT.json")]
    pub(super) reports: Vec<PathBuf>,
    /// With soak tallies: where to write the merged tallies.
    #[arg(long, default_value = "reports/soak.json", value_name = "PATH")]
    pub(super) tallies: PathBuf,
    #[command(flatten)]
    pub(super) written: ReportPaths,
    /// Judge the whole against a server's known deviations, as `run --baseline` does.
    #[arg(long, value_name = "PATH")]
    pub(super) baseline: Option<PathBuf>,
    /// Treat WARN as failing, as `run --strict` does.
    #[arg(long)]
    pub(super) strict: bool,
}

pub(super) fn merge(args: &MergeArgs) -> Result<Exit, Failure> {
    let mut texts = Vec::new();
    for path in &args.reports {
        let text = std::fs::read_to_string(path)
            .map_err(|error| Failure::invalid(format!("{}: {error}", path.display())))?;
        texts.push((path, text));
    }
    let format = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|value| value.get("format")?.as_str().map(str::to_owned))
    };
    if texts
        .iter()
        .any(|(_, text)| format(text).as_deref() == Some(soak::FORMAT))
    {
        return merge_soaks(args, &texts);
    }
    args.written.check(None)?;
    let mut parts = Vec::new();
    for (path, text) in &texts {
        let part = json::parse(text)
            .map_err(|error| Failure::invalid(format!("{}: {error}", path.display())))?;
        parts.push((path, part));
    }
    let target = parts[0].1.target.clone();
    let mut results: Vec<CaseResult> = Vec::new();
    for (path, part) in &parts {
        if part.target != target {
            return Err(Failure::invalid(format!(
                "{} is a run against {}, the others against {target}",
                path.display(),
                part.target
            )));
        }
        for case in &part.cases {
            if results
                .iter()
                .any(|known| known.case_id() == case.case_id())
            {
                return Err(Failure::invalid(format!(
                    "{} is in two reports ({} among them): partitions do not overlap",
                    case.case_id(),
                    path.display()
                )));
            }
            results.push(case.clone());
        }
    }
    // The order of an unpartitioned run: by scenario, then protocol.
    results.sort_by(|a, b| (&a.scenario, a.protocol).cmp(&(&b.scenario, b.protocol)));
    let baseline = args
        .baseline
        .as_ref()
        .map(|path| baseline::load(path).map_err(|error| Failure::invalid(error.to_string())))
        .transpose()?;
    let comparison = baseline
        .as_ref()
        .map(|baseline| baseline::compare(baseline, &results));
    let exit = match &comparison {
        Some(comparison) if comparison.holds() => Exit::Clean,
        Some(_) => Exit::Failed,
        None => Tally::of(&results).exit(args.strict),
    };
    // The partitions ran side by side: the whole took as long as the slowest.
    let wall = parts
        .iter()
        .map(|(_, part)| part.seconds)
        .fold(0.0_f64, f64::max);
    let started = parts
        .iter()
        .filter_map(|(_, part)| part.started.clone())
        .min();
    let server = parts.iter().find_map(|(_, part)| part.server.clone());
    let command = command_line();
    let report = report::Run {
        target: &target,
        strict: args.strict,
        baseline: baseline.as_ref(),
        wall: Duration::try_from_secs_f64(wall).unwrap_or_default(),
        started: started.as_deref(),
        hostname: None,
        server: server.as_deref(),
        command: Some(&command),
    };
    args.written.write(&results, &report, exit)?;
    say!(
        "merged {} reports: {} cases against {target}: {}",
        parts.len(),
        results.len(),
        Tally::of(&results)
    );
    if let Some(comparison) = &comparison {
        say!("{comparison}");
    }
    Ok(exit)
}

/// Soaks run side by side: their tallies added up per protocol and shape, judged by the
/// thresholds they share, written as the reports and tallies of one soak.
fn merge_soaks(args: &MergeArgs, texts: &[(&PathBuf, String)]) -> Result<Exit, Failure> {
    args.written.check(Some(&args.tallies))?;
    let reports = texts
        .iter()
        .map(|(path, text)| {
            soak::SoakReport::parse(text)
                .map_err(|error| Failure::invalid(format!("{}: {error}", path.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let merged =
        soak::SoakReport::merge(&reports).map_err(|error| Failure::invalid(error.to_string()))?;
    let results: Vec<CaseResult> = merged
        .tallies
        .iter()
        .map(|tally| soak::judge(tally, &merged.thresholds))
        .collect();
    let exit = Tally::of(&results).exit(args.strict);
    let wall = merged
        .tallies
        .iter()
        .map(|tally| tally.wall)
        .max()
        .unwrap_or_default();
    let command = command_line();
    let report = report::Run {
        target: &merged.target,
        strict: args.strict,
        baseline: None,
        wall,
        started: None,
        hostname: None,
        server: None,
        command: Some(&command),
    };
    args.written.write(&results, &report, exit)?;
    write_report(
        &args.tallies,
        &serde_json::to_string(&merged).map_err(|error| Failure::harness(error.to_string()))?,
    )?;
    for tally in &merged.tallies {
        say!(
            "{} {}: {}",
            tally.protocol.key(),
            tally.shape,
            tally.figures()
        );
    }
    say!(
        "merged {} soaks against {}: {}",
        reports.len(),
        merged.target,
        Tally::of(&results)
    );
    Ok(exit)
}
