//! `misdirect list`: the scenarios a selection picks (the cases a run of it would run), or the
//! requirements catalogue with the scenarios that cite each rule, so that what is not tested yet
//! shows.

use std::sync::Arc;

use crate::runner;
use misdirect_core::catalogue;
use misdirect_core::outcome::Exit;
use misdirect_core::scenario::Scenario;

use super::Failure;
use super::run::{SuiteArgs, partitioned, protocols, select};

#[derive(Debug, clap::Args)]
pub(super) struct ListArgs {
    #[command(flatten)]
    pub(super) suites: SuiteArgs,
    /// `text` (a line per scenario: ID, protocols, requirement IDs) or `json` (the
    /// `misdirect-list/1` document, described in the README).
    #[arg(long, value_enum, default_value = "text")]
    pub(super) format: ListFormat,
    /// List the requirements catalogue instead: every rule with the selected scenarios that
    /// cite it, why it cannot be tested where it is marked so, `-` where neither (`misdirect-requirements/1` with `--format json`).
    #[arg(long)]
    pub(super) requirements: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum ListFormat {
    Text,
    Json,
}

/// The scenarios a selection picks, on their own lines or as one JSON document.
pub(super) fn list(args: &ListArgs) -> Result<Exit, Failure> {
    let scenarios = select(&args.suites)?;
    if args.requirements {
        return Ok(list_requirements(&scenarios, args.format));
    }
    let protocols = protocols(&args.suites.protocols)?;
    // The cases a run of this selection (and partition) would run.
    let cases = partitioned(
        &args.suites,
        runner::cases(&scenarios)
            .into_iter()
            .filter(|case| protocols.is_empty() || protocols.contains(&case.protocol))
            .collect(),
    )?;
    let runs_on = |scenario: &Scenario| -> Vec<&'static str> {
        cases
            .iter()
            .filter(|case| case.scenario.id == scenario.id)
            .map(|case| case.protocol.key())
            .collect()
    };
    let selected = scenarios
        .iter()
        .filter(|scenario| !runs_on(scenario).is_empty());
    match args.format {
        ListFormat::Text => {
            for scenario in selected {
                let requirements: Vec<&str> = scenario
                    .requirements
                    .iter()
                    .map(|requirement| requirement.id.as_str())
                    .collect();
                say!(
                    "{}\t{}\t{}",
                    scenario.id,
                    runs_on(scenario).join(","),
                    requirements.join(",")
                );
            }
        }
        ListFormat::Json => {
            let listed: Vec<serde_json::Value> = selected
                .map(|scenario| {
                    serde_json::json!({
                        "id": scenario.id,
                        "title": scenario.title,
                        "file": scenario.span.path().display().to_string(),
                        "protocols": runs_on(scenario),
                        "gateway": scenario.gateway,
                        "client": scenario.client.is_some(),
                        "requirements": scenario.requirements.iter().map(|requirement| serde_json::json!({
                            "id": requirement.id,
                            "level": requirement.level.keyword(),
                            "section": requirement.section,
                            "because": requirement.because,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let document = serde_json::json!({ "format": "misdirect-list/1", "scenarios": listed });
            say!("{document:#}");
        }
    }
    Ok(Exit::Clean)
}

/// Every catalogue entry with the IDs of the `scenarios` that cite it.
fn list_requirements(scenarios: &[Arc<Scenario>], format: ListFormat) -> Exit {
    let entries = catalogue::entries();
    // Each entry with the scenarios that cite it, found once.
    let cited: Vec<(&catalogue::Entry, Vec<&str>)> = entries
        .iter()
        .map(|entry| {
            let citing = scenarios
                .iter()
                .filter(|scenario| {
                    scenario
                        .requirements
                        .iter()
                        .any(|cited| cited.id == entry.id)
                })
                .map(|scenario| scenario.id.as_str())
                .collect();
            (entry, citing)
        })
        .collect();
    match format {
        ListFormat::Text => {
            for (entry, cited_by) in &cited {
                say!(
                    "{}\t{}\t{}\t{}",
                    entry.id,
                    entry.level,
                    entry.section,
                    match (&entry.untestable, cited_by.is_empty()) {
                        (Some(why), true) => format!("untestable: {why}"),
                        (None, true) => "-".to_owned(),
                        (_, false) => cited_by.join(","),
                    }
                );
            }
            let uncited = cited.iter().filter(|(_, by)| by.is_empty());
            let untestable = uncited
                .clone()
                .filter(|(entry, _)| entry.untestable.is_some())
                .count();
            let open = uncited.count() - untestable;
            eprintln!(
                "{} of {} requirements are cited by the selected scenarios; {untestable} are untestable here (with the reason); {open} are neither (-)",
                entries.len() - untestable - open,
                entries.len()
            );
        }
        ListFormat::Json => {
            let listed: Vec<serde_json::Value> = cited
                .iter()
                .map(|(entry, cited_by)| {
                    serde_json::json!({
                        "id": entry.id,
                        "topic": entry.topic,
                        "section": entry.section,
                        "links": catalogue::citations(&entry.section)
                            .into_iter()
                            .filter_map(|citation| citation.url)
                            .collect::<Vec<_>>(),
                        "level": entry.level,
                        "roles": entry.roles,
                        "text": entry.text,
                        "cited_by": cited_by,
                        "untestable": entry.untestable,
                    })
                })
                .collect();
            let document =
                serde_json::json!({ "format": "misdirect-requirements/1", "requirements": listed });
            say!("{document:#}");
        }
    }
    Exit::Clean
}
