//! `misdirect audit` on loopback, with nothing but a URL, `--connect-to` and the server's
//! private CA: no profile, no role mapping. Against the embedded target served standalone
//! (correct, each fault an audit can see, hostile), and against real servers started from
//! their profiles, where the audit must find what the suites find on the same server.

use std::path::Path;
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use misdirect::under_test::launcher::RunningServer;
use misdirect_core::deployment::Role;

use super::report::Reported;
use super::{Needs as _, misdirect, scratch, served_embedded};

/// One audit of the embedded target: how it is served, the audit's host and options, the exit
/// code and the verdicts its report must hold.
struct Expect {
    name: &'static str,
    serve: &'static [&'static str],
    host: &'static str,
    options: &'static [&'static str],
    exit: i32,
    verdicts: &'static [(&'static str, &'static str)],
}

fn expectations() -> Vec<Expect> {
    vec![
        Expect {
            name: "correct-passes-everything",
            serve: &[],
            host: "a.test",
            options: &["--also", "c.test"],
            exit: 0,
            verdicts: &[
                ("own [h2]", "PASS"),
                ("uncovered/c.test [h2]", "PASS"),
                ("uncovered/made-up [h2]", "PASS"),
                ("covered/b.test [h2]", "PASS"),
                ("without-sni [h2]", "PASS"),
                ("uncovered/c.test [h1]", "PASS"),
                ("covered/b.test [h1]", "PASS"),
                ("uncovered/c.test [h3]", "PASS"),
                ("covered/b.test [h3]", "PASS"),
            ],
        },
        Expect {
            name: "no-certificate-check-fails",
            serve: &["--fault", "no-certificate-check"],
            host: "a.test",
            options: &["--also", "c.test"],
            exit: 1,
            verdicts: &[
                ("uncovered/c.test [h2]", "FAIL"),
                ("uncovered/c.test [h1]", "FAIL"),
                ("uncovered/c.test [h3]", "FAIL"),
                ("without-sni [h2]", "FAIL"),
            ],
        },
        Expect {
            name: "route-by-sni-differs-from-a-fresh-connection",
            serve: &["--fault", "route-by-sni"],
            host: "a.test",
            options: &["--strict"],
            exit: 1,
            verdicts: &[
                ("covered/b.test [h2]", "WARN"),
                ("covered/b.test [h1]", "WARN"),
                ("uncovered/made-up [h2]", "PASS"),
            ],
        },
        Expect {
            name: "sticky-routing-differs-from-a-fresh-connection",
            serve: &["--fault", "sticky-routing"],
            host: "a.test",
            options: &["--protocol", "h2"],
            exit: 0,
            verdicts: &[("covered/b.test [h2]", "WARN")],
        },
        Expect {
            name: "default-virtual-host-serves-the-made-up-name",
            serve: &["--fault", "default-virtual-host"],
            host: "a.test",
            options: &["--protocol", "h2"],
            exit: 1,
            verdicts: &[("uncovered/made-up [h2]", "FAIL")],
        },
        Expect {
            name: "status-404-warns",
            serve: &["--fault", "status-404"],
            host: "a.test",
            options: &["--also", "c.test", "--protocol", "h2"],
            exit: 0,
            verdicts: &[
                ("uncovered/c.test [h2]", "WARN"),
                ("uncovered/made-up [h2]", "WARN"),
            ],
        },
        Expect {
            name: "no-sni-bypass-fails-without-sni",
            serve: &["--fault", "no-sni-bypass"],
            host: "a.test",
            options: &["--also", "c.test", "--protocol", "h2"],
            exit: 1,
            verdicts: &[
                ("without-sni [h2]", "FAIL"),
                ("uncovered/c.test [h2]", "PASS"),
            ],
        },
        Expect {
            name: "h3-no-certificate-check-fails-over-h3-only",
            serve: &["--fault", "h3-no-certificate-check"],
            host: "a.test",
            options: &["--also", "c.test"],
            exit: 1,
            verdicts: &[
                ("uncovered/c.test [h2]", "PASS"),
                ("uncovered/c.test [h3]", "FAIL"),
            ],
        },
        Expect {
            name: "mtls-tenant-refused-on-a-sibling-connection",
            serve: &[],
            host: "t1.w.test",
            options: &["--also", "t2.w.test", "--protocol", "h2"],
            exit: 0,
            verdicts: &[("covered/t2.w.test [h2]", "PASS")],
        },
        Expect {
            name: "mtls-coalescing-bypass-fails",
            serve: &["--fault", "mtls-coalescing-bypass"],
            host: "t1.w.test",
            options: &["--also", "t2.w.test", "--protocol", "h2"],
            exit: 1,
            verdicts: &[("covered/t2.w.test [h2]", "FAIL")],
        },
        // Hostile targets: nothing passes, and each ends within its deadlines.
        Expect {
            name: "refusing-everything-proves-nothing",
            serve: &["--chaos", "reset-every-stream"],
            host: "a.test",
            options: &["--also", "c.test", "--protocol", "h2"],
            exit: 2,
            verdicts: &[
                ("own [h2]", "ERROR"),
                ("uncovered/c.test [h2]", "ERROR"),
                ("uncovered/made-up [h2]", "ERROR"),
                ("covered/b.test [h2]", "ERROR"),
            ],
        },
        Expect {
            name: "silent-target-is-error",
            serve: &["--chaos", "tls-then-silence"],
            host: "a.test",
            options: &["--timeout", "1"],
            exit: 2,
            verdicts: &[("connection [h2]", "ERROR")],
        },
        Expect {
            name: "certificate-for-another-name-is-error",
            serve: &["--chaos", "wrong-name"],
            host: "a.test",
            options: &[],
            exit: 2,
            verdicts: &[("connection [h2]", "ERROR")],
        },
        Expect {
            name: "budget-leaves-protocols-out",
            serve: &[],
            host: "a.test",
            options: &["--also", "c.test", "--max-requests", "5"],
            exit: 0,
            verdicts: &[
                ("uncovered/c.test [h2]", "PASS"),
                ("connection [h1]", "SKIP"),
                ("connection [h3]", "SKIP"),
            ],
        },
    ]
}

pub(super) fn trials() -> Vec<Trial> {
    let mut trials: Vec<Trial> = expectations()
        .into_iter()
        .map(|expect| {
            Trial::test(format!("cli::audit-{}", expect.name), move || {
                expect.check()
            })
        })
        .collect();
    trials.extend([
        Trial::test(
            "cli::audit-untrusted-certificate-is-error",
            untrusted_certificate_is_error,
        ),
        Trial::test("cli::audit-dry-run-sends-nothing", dry_run_sends_nothing),
        Trial::test(
            "cli::audit-rejects-what-it-cannot-audit",
            rejects_what_it_cannot_audit,
        ),
    ]);
    // Real servers, started from their profiles: the audit's verdict on the foreign name is
    // the suites' on server/uncovered-authority.
    for (server, expected) in [("nginx", "FAIL"), ("apache", "PASS")] {
        let needs = match server {
            "apache" => "apache2",
            other => other,
        };
        trials.push(
            Trial::test(
                format!("cli::audit-{server}-finds-what-the-suites-find"),
                move || finds_what_the_suites_find(server, expected),
            )
            .needs(&[needs]),
        );
    }
    trials
}

/// Runs `misdirect audit https://HOST:PORT/` against 127.0.0.1:PORT, trusting `ca`, with
/// reports in `dir`: its exit code, report and output.
fn audit(
    dir: &Path,
    host: &str,
    port: u16,
    ca: &Path,
    options: &[&str],
) -> Result<(i32, Reported, String), Failed> {
    let junit = dir.join("junit.xml");
    let url = format!("https://{host}:{port}/");
    let connect_to = format!(":{port}:127.0.0.1:{port}");
    let mut args = vec![
        "audit",
        &url,
        "--connect-to",
        &connect_to,
        "--trust",
        ca.to_str().unwrap_or_default(),
        "--rate",
        "1000",
    ];
    let paths = [
        ("--junit", junit.clone()),
        ("--html", dir.join("report.html")),
        ("--json", dir.join("report.json")),
    ];
    for (option, path) in &paths {
        args.extend([*option, path.to_str().unwrap_or_default()]);
    }
    args.extend(options);
    let (code, stdout, stderr) = misdirect(&args)?;
    let output = format!("{stdout}{stderr}");
    let reported = Reported::read(&junit).map_err(|error| format!("{error:?}\n{output}"))?;
    Ok((code, reported, output))
}

impl Expect {
    fn check(&self) -> Result<(), Failed> {
        let dir = scratch(&format!("audit-{}", self.name));
        let (mut server, port) = served_embedded(&dir, self.serve)?;
        let began = Instant::now();
        let audited = audit(
            &dir,
            self.host,
            port,
            &dir.join("certs/ca.pem"),
            self.options,
        );
        let took = began.elapsed();
        let _ = server.kill();
        let _ = server.wait();
        let (code, reported, output) = audited?;
        let mut wrong: Vec<String> = self
            .verdicts
            .iter()
            .filter_map(|(case, verdict)| {
                let case = format!("audit/{}/{case}", self.host);
                let found = reported.verdict(&case);
                (found != Some(*verdict)).then(|| format!("{case}: {found:?} instead of {verdict}"))
            })
            .collect();
        if code != self.exit {
            wrong.push(format!("exit {code} instead of {}", self.exit));
        }
        // A correct target passes everything; a hostile one passes nothing of its own.
        if self.serve.is_empty() && self.exit == 0 {
            let not_passed = reported.count("FAIL")
                + reported.count("WARN")
                + reported.count("ERROR")
                + reported.count("INFO");
            if not_passed > 0 {
                wrong.push(format!("a correct target: {}", reported.summary()));
            }
        }
        if self.serve.first() == Some(&"--chaos") && reported.count("PASS") > 0 {
            wrong.push(format!("a hostile target: {}", reported.summary()));
        }
        if took > Duration::from_secs(20) {
            wrong.push(format!("took {took:?}"));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!("{}\n{output}", wrong.join("\n")).into())
        }
    }
}

/// A certificate that does not chain to what the audit trusts is an ERROR with the reason,
/// never ignored.
fn untrusted_certificate_is_error() -> Result<(), Failed> {
    let dir = scratch("audit-untrusted");
    let other = super::certificates_in(&dir.join("other"))?;
    let (mut server, port) = served_embedded(&dir, &[])?;
    let audited = audit(&dir, "a.test", port, &other.join("ca.pem"), &[]);
    let _ = server.kill();
    let _ = server.wait();
    let (code, reported, output) = audited?;
    if code != 2
        || reported.verdict("audit/a.test/connection [h2]") != Some("ERROR")
        || !reported.messages.contains("not trusted")
        || reported.count("PASS") > 0
    {
        return Err(format!("exit {code}, {}\n{output}", reported.summary()).into());
    }
    Ok(())
}

/// `--dry-run` connects once and prints the plan; no request goes out and no report is written.
fn dry_run_sends_nothing() -> Result<(), Failed> {
    let dir = scratch("audit-dry-run");
    let (mut server, port) = served_embedded(&dir, &[])?;
    let url = format!("https://a.test:{port}/");
    let connect_to = format!("a.test:{port}:127.0.0.1:{port}");
    let junit = dir.join("junit.xml");
    let ran = misdirect(&[
        "audit",
        &url,
        "--connect-to",
        &connect_to,
        "--trust",
        dir.join("certs/ca.pem").to_str().unwrap_or_default(),
        "--also",
        "c.test",
        "--dry-run",
        "--junit",
        junit.to_str().unwrap_or_default(),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    let (code, stdout, stderr) = ran?;
    let planned = stdout.contains("certificate for a.test, b.test")
        && stdout.contains("c.test (yours)")
        && stdout.contains("compared with fresh connections: b.test");
    if code != 0 || !planned || stdout.contains("requests sent") || junit.exists() {
        return Err(format!("exit {code}\n{stdout}{stderr}").into());
    }
    Ok(())
}

/// What an audit cannot run with exits 3 with the reason, before any connection.
fn rejects_what_it_cannot_audit() -> Result<(), Failed> {
    let offline = ":443:127.0.0.1:1";
    let cases: [(&[&str], &str); 4] = [
        (&["audit", "http://a.test/"], "the URL is https"),
        (&["audit", "https://127.0.0.1/"], "an IP address"),
        (
            &["audit", "https://a.test/", "--protocol", "h3"],
            "--protocol h2 or h1",
        ),
        (
            &[
                "audit",
                "https://a.test/",
                "--connect-to",
                offline,
                "--max-requests",
                "2",
            ],
            "--max-requests takes 3",
        ),
    ];
    for (args, says) in cases {
        let (code, stdout, stderr) = misdirect(args)?;
        if code != 3 || !format!("{stdout}{stderr}").contains(says) {
            return Err(format!("{args:?}: exit {code}\n{stdout}{stderr}").into());
        }
    }
    Ok(())
}

/// Starts `targets/<server>.yaml` and, for a gateway, its mock upstreams; audits its primary
/// with its foreign name as the user's other hostname; runs the suites' scenario about that
/// name on the same profile; both must reach `expected`.
fn finds_what_the_suites_find(server: &str, expected: &str) -> Result<(), Failed> {
    let dir = scratch(&format!("audit-{server}"));
    let profile =
        misdirect::under_test::profile::load(&super::root().join(format!("targets/{server}.yaml")))
            .map_err(|error| error.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|error| error.to_string())?;
    let (remote, running) = misdirect::under_test::launcher::prepare(&profile, &dir.join("work"))
        .map_err(|error| error.to_string())?;
    let _running: Option<RunningServer> = running;
    let _upstreams = match (remote.upstreams_port, &remote.pki) {
        (Some(port), Some(pki)) => Some(
            runtime
                .block_on(misdirect::embedded::upstream::Upstreams::start_on(
                    pki,
                    port,
                    !remote.upstreams_cleartext,
                ))
                .map_err(|error| error.to_string())?,
        ),
        _ => None,
    };
    let misdirect::client::tls::Roots::CaFile(ca) = &remote.trust.roots else {
        return Err("the profile's server trusts a private CA".into());
    };
    let (primary, foreign) = (
        remote.deployment.name(Role::Primary),
        remote.deployment.name(Role::Foreign),
    );
    let (code, reported, output) = audit(
        &dir,
        primary,
        remote.address.port(),
        ca,
        &["--also", foreign, "--protocol", "h2", "--protocol", "h1"],
    )?;
    let audited: Vec<Option<&str>> = ["h2", "h1"]
        .iter()
        .map(|protocol| {
            reported.verdict(&format!("audit/{primary}/uncovered/{foreign} [{protocol}]"))
        })
        .collect();
    // The suites, on the same profile (started again by `run`).
    let suites_dir = dir.join("suites");
    let junit = suites_dir.join("junit.xml");
    std::fs::create_dir_all(&suites_dir).map_err(|error| error.to_string())?;
    let (_, stdout, stderr) = misdirect(&[
        "run",
        "--target",
        &format!("targets/{server}.yaml"),
        "--filter",
        "server/uncovered-authority",
        "--protocol",
        "h2",
        "--protocol",
        "h1",
        "--work-dir",
        suites_dir.join("servers").to_str().unwrap_or_default(),
        "--junit",
        junit.to_str().unwrap_or_default(),
        "--html",
        suites_dir.join("report.html").to_str().unwrap_or_default(),
        "--json",
        suites_dir.join("report.json").to_str().unwrap_or_default(),
    ])?;
    let suites = Reported::read(&junit)?;
    let found: Vec<Option<&str>> = ["h2", "h1"]
        .iter()
        .map(|protocol| suites.verdict(&format!("server/uncovered-authority [{protocol}]")))
        .collect();
    let agreed = audited == found && found.iter().all(|verdict| *verdict == Some(expected));
    let reached = reported.verdict(&format!("audit/{primary}/own [h2]")) == Some("PASS");
    if !agreed || !reached || (expected == "FAIL" && code != 1) {
        return Err(format!(
            "audit {audited:?} (exit {code}), suites {found:?}, expected {expected}\n{output}\n{stdout}{stderr}"
        )
        .into());
    }
    Ok(())
}
