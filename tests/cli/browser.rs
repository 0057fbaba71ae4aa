//! The HTML report as a browser shows it: headless Chromium loads the page a failing run wrote
//! and prints the document it built. The cases table and the sections must put the failing cases
//! first, and the page must survive the browser's parser whole (a stray tag would move rows).

use std::process::Command;

use libtest_mimic::{Failed, Trial};

use super::{Needs, misdirect, scratch};

/// The trial, ignored (naming the tool) where Chromium is not installed.
pub(super) fn html_report_renders_failures_first() -> Trial {
    Trial::test(
        "cli::html-report-in-chromium-shows-failures-first",
        rendered_report_puts_failures_first,
    )
    .needs(&["chromium", "timeout"])
}

fn rendered_report_puts_failures_first() -> Result<(), Failed> {
    let dir = scratch("html-in-chromium");
    let html = dir.join("report.html");
    // A faulty target fails some cases and passes most: passes come first in the suites' order.
    let (code, stdout, stderr) = misdirect(&[
        "run",
        "--target",
        "embedded:no-certificate-check",
        "--filter",
        "server/*",
        "--html",
        html.to_str().unwrap_or_default(),
        "--junit",
        dir.join("junit.xml").to_str().unwrap_or_default(),
        "--json",
        dir.join("report.json").to_str().unwrap_or_default(),
    ])?;
    if code != 1 {
        return Err(format!(
            "expected exit 1 from the faulty target: exit {code}\n{stdout}{stderr}"
        )
        .into());
    }
    let output = Command::new("timeout")
        .args(["-k", "5", "90", "chromium"])
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .env("HOME", &dir)
        .output()
        .map_err(|error| format!("cannot start chromium: {error}"))?;
    let dom = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !dom.contains("</html>") {
        return Err(format!(
            "chromium did not render the report ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    // The rows of the cases table, as the browser parsed them.
    let table = dom
        .split_once("<table id=\"cases\">")
        .and_then(|(_, rest)| rest.split_once("</table>"))
        .map(|(table, _)| table)
        .ok_or("the rendered page has no cases table")?;
    let rows: Vec<&str> = table.split("<tr>").skip(2).collect();
    let first_pass = rows.iter().position(|row| row.contains("verdict PASS"));
    let last_fail = rows.iter().rposition(|row| row.contains("verdict FAIL"));
    match (last_fail, first_pass) {
        (Some(last_fail), Some(first_pass))
            if last_fail < first_pass && rows[0].contains("verdict FAIL") => {}
        _ => {
            return Err(format!(
                "expected every FAIL row before the first PASS row (FAIL last at {last_fail:?}, PASS first at {first_pass:?}):\n{}",
                rows.iter().take(5).copied().collect::<Vec<_>>().join("\n")
            )
            .into());
        }
    }
    // Every case has its section, the first one a failing case's; the run's outcome is on top.
    let sections = dom.matches("<section id=").count();
    if sections != rows.len() {
        return Err(format!("{} rows but {sections} sections", rows.len()).into());
    }
    let first_section = dom.split("<section id=").nth(1).unwrap_or_default();
    if !first_section.contains("<span class=\"FAIL\">FAIL</span>") {
        return Err(
            format!("the first section is not a failing case's:\n{first_section:.300}").into(),
        );
    }
    if !dom.contains("exit 1: failed") {
        return Err("the page does not say how the run ended".into());
    }
    Ok(())
}
