//! The CLI's contract as trials: exit codes, reports and diagnostics of the `misdirect` binary.
//!
//! Most of the contract is a table ([`contracts`]): a command, the exit code it must end with,
//! the verdicts its JUnit report must hold (read with quick-junit, see `report`), and the words
//! its diagnostics or report must contain. What needs more set-up than a command (a silent
//! listener, a served profile, a signal) is a trial function below the table. The profiled real
//! servers come from `targets/*.yaml` themselves.

mod audit;
mod browser;
mod report;
mod schema;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use misdirect_core::fault::{Actor, Fault};
use report::Reported;

/// How many cases of a verdict a report must hold.
#[derive(Debug, Clone, Copy)]
enum Cases {
    None,
    Some,
}

/// One line of the contract: `misdirect <args>` ends with `exit`, its report holds `cases`, and
/// its output or report says each of `says`. In `args`, `{junit}` is a report path in a scratch
/// folder and `{certs}` a PKI written there with `misdirect certs`.
struct Contract {
    name: String,
    args: Vec<String>,
    exit: i32,
    cases: Vec<(&'static str, Cases)>,
    says: Vec<&'static str>,
    /// The most the command may take.
    within: Option<Duration>,
}

impl Contract {
    fn new(name: impl Into<String>, args: &[&str], exit: i32) -> Self {
        Self {
            name: name.into(),
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            exit,
            cases: Vec::new(),
            says: Vec::new(),
            within: None,
        }
    }

    fn within(mut self, bound: Duration) -> Self {
        self.within = Some(bound);
        self
    }

    fn cases(mut self, cases: &[(&'static str, Cases)]) -> Self {
        self.cases = cases.to_vec();
        self
    }

    fn says(mut self, words: &[&'static str]) -> Self {
        self.says = words.to_vec();
        self
    }

    fn trial(self) -> Trial {
        Trial::test(format!("cli::{}", self.name), move || self.check())
    }

    fn check(&self) -> Result<(), Failed> {
        let dir = scratch(&self.name);
        let junit = dir.join("junit.xml");
        let certs = if self.args.iter().any(|arg| arg == "{certs}") {
            certificates_in(&dir)?
        } else {
            PathBuf::new()
        };
        let args: Vec<String> = self
            .args
            .iter()
            .map(|arg| {
                arg.replace("{junit}", &junit.to_string_lossy())
                    .replace("{certs}", &certs.to_string_lossy())
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let (code, stdout, stderr) = misdirect(&args)?;
        let took = started.elapsed();
        let context = || {
            format!(
                "misdirect {}: exit {code}\n{stdout}{stderr}",
                args.join(" ")
            )
        };
        if code != self.exit {
            return Err(format!("expected exit {}; {}", self.exit, context()).into());
        }
        if let Some(bound) = self.within.filter(|bound| took > *bound) {
            return Err(format!("took {took:?}, more than {bound:?}; {}", context()).into());
        }
        let mut said = format!("{stdout}{stderr}");
        if junit.exists() {
            let reported = Reported::read(&junit)?;
            for (verdict, cases) in &self.cases {
                let count = reported.count(verdict);
                let holds = match cases {
                    Cases::None => count == 0,
                    Cases::Some => count > 0,
                };
                if !holds {
                    return Err(format!(
                        "expected {cases:?} {verdict}, the report has {}; {}",
                        reported.summary(),
                        context()
                    )
                    .into());
                }
            }
            said.push_str(&reported.messages);
        } else if !self.cases.is_empty() {
            return Err(format!("no JUnit report was written; {}", context()).into());
        }
        if let Some(missing) = self.says.iter().find(|words| !said.contains(**words)) {
            return Err(format!("expected `{missing}` to be said; {}", context()).into());
        }
        Ok(())
    }
}

/// The contract's table.
fn contracts() -> Vec<Contract> {
    use Cases::{None, Some};
    let mut table = vec![
        Contract::new(
            "reference-run-exits-0-and-writes-junit",
            &["run", "--junit", "{junit}"],
            0,
        )
        .cases(&[("PASS", Some), ("FAIL", None), ("ERROR", None)]),
        // The reference comes from the checks' declarations: every family, values as written.
        // TAP on stdout: a failing point with its diagnostics; misdirect talks on stderr.
        Contract::new(
            "tap-report-on-stdout",
            &[
                "run",
                "--target",
                "embedded:no-certificate-check",
                "--filter",
                "server/uncovered-authority",
                "--protocol",
                "h2",
                "--junit",
                "{junit}",
                "--tap",
                "-",
            ],
            1,
        )
        .cases(&[("FAIL", Some)])
        .says(&[
            "TAP version 14\n1..1\n",
            "not ok 1 - server/uncovered-authority [h2]\n  ---\n",
            "requirement: \"R9110-7.4-b (MUST, RFC 9110 §7.4)\"",
        ]),
        // Completion scripts come from the parser's own definitions; help names every protocol.
        Contract::new("bash-completion", &["completions", "bash"], 0)
            .says(&["_misdirect()", "--connect-to", "--partition", "merge"]),
        Contract::new("help-names-every-protocol", &["--help"], 0)
            .says(&["h1 is HTTP/1.1", "h2 HTTP/2", "h3 HTTP/3 over QUIC"]),
        // The catalogue with who cites each rule, why a rule cannot be tested, and `-` for the
        // rest.
        Contract::new("list-requirements", &["list", "--requirements"], 0).says(&[
            "R9110-7.4-b\tMUST\tRFC 9110 §7.4\tgateway/misdirected-request-not-forwarded,",
            "R9110-4.3.4-b\tMUST NOT\tRFC 9110 §4.3.4\t-",
            "R8336-4-a\tRecommended practice\tRFC 8336 §4\tuntestable: leaves how a client",
            "of 80 requirements are cited by the selected scenarios; 13 are untestable here",
        ]),
        Contract::new("checks-lists-every-check", &["checks"], 0).says(&[
            "served_by: <role>",
            "uncovered_refused: true",
            "status: <status> or [<status>, ...]",
            "advertised_covered: true",
            "reached_no_upstream: true",
            "at_most_requests: <count>",
        ]),
        // --name behaves as a profile's `names:`: a role left out is played by nobody.
        Contract::new(
            "unnamed-role-is-skip",
            &[
                "run",
                "--target",
                "127.0.0.1:9",
                "--certs",
                "{certs}",
                "--name",
                "primary=a.test",
                "--filter",
                "server/mtls-coalesced",
                "--protocol",
                "h2",
                "--junit",
                "{junit}",
            ],
            4,
        )
        .cases(&[("SKIP", Some), ("ERROR", None), ("PASS", None)])
        .says(&["no --name maps a name to the `"]),
        // Report paths are checked before anything runs: two reports on one file lose one.
        Contract::new(
            "one-path-for-two-reports-is-invalid",
            &["run", "--junit", "{junit}", "--html", "{junit}"],
            3,
        )
        .says(&["is given for two reports"]),
        // What a profile rejects, the command line rejects too; files are checked up front.
        Contract::new(
            "zero-concurrency-is-invalid",
            &["run", "--concurrency", "0"],
            3,
        )
        .says(&["--concurrency is between 1 and 1024"]),
        Contract::new(
            "unknown-client-placeholder-is-invalid",
            &["run", "--client", "curl -s {urls} {url} ${HOME} {a,b}"],
            3,
        )
        .says(&["{url} is no placeholder"]),
        // A client that sent nothing: ERROR, with its exit code and stderr in the finding.
        Contract::new(
            "silent-client-shows-its-exit-and-stderr",
            &[
                "run",
                "--filter",
                "client/retries-a-refused-request",
                "--protocol",
                "h1",
                "--junit",
                "{junit}",
                "--client",
                "sh -c 'echo could not resolve a.test >&2; exit 6' {urls}",
            ],
            2,
        )
        .cases(&[("ERROR", Some), ("PASS", None)])
        .says(&[
            "sent no request to the origin: the command exited with 6; stderr: could not resolve a.test",
        ]),
        Contract::new(
            "missing-certs-folder-is-invalid",
            &[
                "run",
                "--target",
                "127.0.0.1:9",
                "--certs",
                "/nonexistent/certs",
            ],
            3,
        )
        .says(&["--certs /nonexistent/certs/ca.pem: no such file"]),
        // A line per case as it ends, then the failing cases with what they broke.
        Contract::new(
            "cases-are-told-as-they-end",
            &[
                "run",
                "--target",
                "embedded:no-certificate-check",
                "--filter",
                "server/uncovered-authority",
                "--junit",
                "{junit}",
            ],
            1,
        )
        .says(&[
            "/3) server/uncovered-authority [h",
            "failing:\n   FAIL server/uncovered-authority [h1]  R9110-7.4-b (MUST RFC 9110 §7.4)",
        ]),
        Contract::new(
            "invalid-arguments-exit-3",
            &["run", "--target", "embedded:no-such-fault"],
            3,
        )
        .says(&["unknown fault"]),
        // A server of yours without --h3-port: every HTTP/3 case is SKIP with the reason,
        // decided before any packet is sent; a run in which nothing was tested exits 4.
        Contract::new(
            "no-h3-endpoint-is-skip-not-error",
            &[
                "run",
                "--target",
                "127.0.0.1:9",
                "--certs",
                "{certs}",
                "--protocol",
                "h3",
                "--filter",
                "server/own-authority",
                "--filter",
                "server/h3-*",
                "--junit",
                "{junit}",
            ],
            4,
        )
        .cases(&[
            ("SKIP", Some),
            ("PASS", None),
            ("FAIL", None),
            ("WARN", None),
            ("INFO", None),
            ("ERROR", None),
        ])
        .says(&["no HTTP/3 endpoint is configured", "nothing was tested"]),
        Contract::new(
            "warn-is-not-fail-without-strict",
            &[
                "run",
                "--target",
                "embedded:status-404",
                "--junit",
                "{junit}",
            ],
            0,
        )
        .cases(&[("WARN", Some), ("FAIL", None)]),
        // HTTP/1.1 may close after a 421; the harness reopens the connection the same way, so
        // every HTTP/1.1 case still passes against a target that does.
        Contract::new(
            "http1-close-after-421-is-allowed",
            &[
                "run",
                "--strict",
                "--target",
                "embedded:close-after-421",
                "--protocol",
                "h1",
                "--junit",
                "{junit}",
            ],
            0,
        )
        .cases(&[
            ("PASS", Some),
            ("FAIL", None),
            ("WARN", None),
            ("INFO", None),
            ("SKIP", None),
            ("ERROR", None),
        ]),
        // Port 9 (discard) on loopback has no listener here: said once up front, and every
        // case ERROR without being run.
        Contract::new(
            "unreachable-target-is-error-not-hang",
            &[
                "run",
                "--target",
                "127.0.0.1:9",
                "--certs",
                "{certs}",
                "--filter",
                "server/own-authority",
                "--junit",
                "{junit}",
                "--timeout",
                "2",
            ],
            2,
        )
        .cases(&[("ERROR", Some), ("PASS", None)])
        .says(&["cannot reach 127.0.0.1:9 over TCP", "the case was not run"]),
    ];
    table.extend(chaos_contracts());
    table.extend(soak_contracts());
    for fault in Fault::ALL {
        let target = format!("embedded:{fault}");
        // A fault that shows only under load passes every scenario: the soak trials catch it.
        let (outcome, exit) = if fault.actor() == Actor::Load {
            ("passes", 0)
        } else {
            ("exits-1", 1)
        };
        table.push(Contract::new(
            format!("fault-{fault}-{outcome}-under-strict"),
            &["run", "--strict", "--target", &target, "--junit", "{junit}"],
            exit,
        ));
    }
    table
}

/// `misdirect soak`: the reference target passes every protocol and shape; a fault that shows
/// only under load (which passes every scenario, above) fails it; hostile targets never pass,
/// and every soak ends within its duration and one deadline.
fn soak_contracts() -> Vec<Contract> {
    use Cases::{None, Some};
    const EVERY: &[&str] = &[
        "--protocol",
        "h1",
        "--protocol",
        "h2",
        "--protocol",
        "h3",
        "--shape",
        "streams",
        "--shape",
        "churn",
    ];
    let soak = |target: &str, seconds: &str, more: &[&str]| {
        let mut args = vec![
            "soak",
            "--target",
            target,
            "--for",
            seconds,
            "--timeout",
            "1",
        ];
        args.extend(more);
        args.extend(["--junit", "{junit}"]);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let contract = |name: String, args: Vec<String>, exit: i32| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Contract::new(name, &args, exit)
    };
    let mut table = vec![
        contract(
            "soak-reference-passes".to_owned(),
            soak("embedded", "0.5", EVERY),
            0,
        )
        .cases(&[
            ("PASS", Some),
            ("FAIL", None),
            ("WARN", None),
            ("ERROR", None),
        ])
        .says(&["requests in", "handshakes", "p99"])
        .within(Duration::from_secs(30)),
        contract(
            "soak-silent-target-is-an-error".to_owned(),
            soak("chaos:tls-then-silence", "0.5", &["--protocol", "h2"]),
            2,
        )
        .cases(&[("ERROR", Some), ("PASS", None)])
        .within(Duration::from_secs(10)),
        contract(
            "soak-wrong-certificate-is-an-error".to_owned(),
            soak("chaos:wrong-name", "0.5", &["--protocol", "h2"]),
            2,
        )
        .cases(&[("ERROR", Some), ("PASS", None)])
        .says(&["does not cover the name the connection was made for"]),
        contract(
            "soak-refusing-everything-is-no-pass".to_owned(),
            soak("chaos:goaway-first", "0.5", &["--protocol", "h1"]),
            0,
        )
        .cases(&[("WARN", Some), ("PASS", None)]),
        contract(
            "soak-without-alpn-skips-h2".to_owned(),
            soak("chaos:no-alpn", "0.5", &["--protocol", "h2"]),
            4,
        )
        .cases(&[("SKIP", Some), ("PASS", None)]),
        Contract::new(
            "bench-soak-beside-h2load",
            &["bench", "--soak", "--for", "1", "--churn", "20"],
            0,
        )
        .says(&["h2load", "misdirect soak", "ratio", "PASS"]),
    ];
    for fault in Fault::ALL
        .iter()
        .filter(|fault| fault.actor() == Actor::Load)
    {
        table.push(
            contract(
                format!("soak-catches-{fault}"),
                soak(&format!("embedded:{fault}"), "2", &["--protocol", "h2"]),
                1,
            )
            .cases(&[("FAIL", Some), ("PASS", None)])
            .says(&["R9110-7.4-b", "instead of bravo"]),
        );
    }
    table
}

/// The chaos target, behaviour by behaviour: never a PASS on what a hostile target does, the
/// reason said, the JUnit written, and all within the case deadline (six times `--timeout`)
/// and one second. The scenarios are the refusal-only ones that a target serving nothing used
/// to pass, and a POST (a request body) for the flow-control window.
fn chaos_contracts() -> Vec<Contract> {
    use Cases::{None, Some};
    const TCP: &[&str] = &["--protocol", "h1", "--protocol", "h2"];
    const QUIC: &[&str] = &["--protocol", "h3"];
    let behaviours: [(&str, &[&str], &[&str]); 18] = [
        ("silent-tcp", TCP, &["no TLS handshake within 2000 ms"]),
        (
            "tls-then-silence",
            TCP,
            &["no response within 2000 ms", "no HTTP/2 setup"],
        ),
        (
            "handshake-reset",
            TCP,
            &["dropped the connection during the TLS handshake without an alert"],
        ),
        (
            "garbage",
            TCP,
            &[
                "the answer does not begin with HTTP/",
                "its first frame is not SETTINGS",
            ],
        ),
        ("h2-speaks-h1", TCP, &["began with \"HTTP/1.1 200 OK"]),
        (
            "goaway-first",
            TCP,
            &["GOAWAY PROTOCOL_ERROR", "the control was not served"],
        ),
        (
            "reset-every-stream",
            TCP,
            &["stream reset REFUSED_STREAM", "the control was not served"],
        ),
        ("one-byte-per-second", TCP, &["no response within 2000 ms"]),
        (
            "endless-header",
            TCP,
            &["a response head larger than 64 KiB"],
        ),
        ("endless-continuation", TCP, &["too_many_continuations"]),
        ("huge-settings", TCP, &["frame with invalid size"]),
        ("window-zero", TCP, &["no response within 2000 ms"]),
        ("no-streams", TCP, &["SETTINGS_MAX_CONCURRENT_STREAMS 0"]),
        (
            "endless-body",
            TCP,
            &["the control was not served (200 (no tenant named))"],
        ),
        ("wrong-name", TCP, &["covers only [c.test]"]),
        (
            "quic-silent",
            QUIC,
            &["no QUIC handshake and HTTP/3 setup within 2000 ms"],
        ),
        (
            "quic-garbage",
            QUIC,
            &["no QUIC handshake and HTTP/3 setup within 2000 ms"],
        ),
        (
            "quic-stream-reset",
            QUIC,
            &["stream reset H3_REQUEST_REJECTED"],
        ),
    ];
    let run = |behaviour: &str, protocols: &[&str]| {
        let mut args = vec![
            "run".to_owned(),
            "--target".to_owned(),
            format!("chaos:{behaviour}"),
            "--timeout".to_owned(),
            "2".to_owned(),
            "--junit".to_owned(),
            "{junit}".to_owned(),
        ];
        for scenario in [
            "server/uncovered-authority",
            "server/no-sni-mtls",
            "server/authority-over-host",
            "server/mtls-coalesced",
            "server/misdirected-post",
        ] {
            args.extend(["--filter".to_owned(), scenario.to_owned()]);
        }
        args.extend(protocols.iter().map(|arg| (*arg).to_owned()));
        args
    };
    // The case deadline is six times --timeout.
    let bound = Duration::from_secs(6 * 2 + 1);
    let mut table: Vec<Contract> = behaviours
        .into_iter()
        .map(|(behaviour, protocols, says)| {
            let args = run(behaviour, protocols);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            // A 200 that names nobody answers the `refused: true` of the mTLS tenant and of an
            // uncovered authority wrongly: FAIL, which outranks the unserved control's ERROR.
            let answers_200 = matches!(behaviour, "h2-speaks-h1" | "endless-body");
            let (exit, worst) = if answers_200 {
                (1, "FAIL")
            } else {
                (2, "ERROR")
            };
            Contract::new(format!("chaos-{behaviour}-is-never-a-pass"), &args, exit)
                .cases(&[
                    (worst, Some),
                    ("PASS", None),
                    ("WARN", None),
                    ("INFO", None),
                ])
                .says(says)
                .within(bound)
        })
        .collect();
    // A chaos behaviour served on its own, for other tools (and older misdirects) to meet.
    table.push(
        Contract::new(
            "chaos-serve-says-where",
            &[
                "serve", "--chaos", "garbage", "--for", "1", "--certs", "{certs}",
            ],
            0,
        )
        .says(&[
            "chaos target `garbage`",
            "misdirect run --target 127.0.0.1:",
        ]),
    );
    // HTTP/1.1 without ALPN is legal: tested and passed, HTTP/2 not applicable.
    let args = run("no-alpn", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    table.push(
        Contract::new("chaos-no-alpn-is-tested-over-http1", &args, 0)
            .cases(&[
                ("PASS", Some),
                ("SKIP", Some),
                ("ERROR", None),
                ("FAIL", None),
            ])
            .says(&["the target negotiated ALPN (none) instead of h2"])
            .within(bound),
    );
    table
}

/// Every CLI trial: the table, then the trials that need more than a command.
pub(crate) fn trials() -> Vec<Trial> {
    let mut trials: Vec<Trial> = contracts().into_iter().map(Contract::trial).collect();
    trials.extend([
        Trial::test(
            "cli::unknown-key-exits-3-with-location",
            unknown_key_is_located,
        ),
        Trial::test("cli::broken-profile-is-located", broken_profile_is_located),
        Trial::test(
            "cli::bench-times-every-protocol",
            bench_times_every_protocol,
        ),
        Trial::test(
            "cli::silent-target-is-error-within-deadline",
            silent_target_is_error,
        ),
        Trial::test(
            "cli::baseline-catches-unexpected-pass-and-new-failure",
            baseline_catches_departures,
        ),
        Trial::test("cli::unmapped-role-is-skip", unmapped_role_is_skip),
        Trial::test("cli::keylog-writes-tls-secrets", keylog_writes_tls_secrets),
        Trial::test("cli::junit-to-stdout-is-clean", junit_to_stdout_is_clean),
        Trial::test(
            "cli::hostname-target-through-connect-to",
            hostname_target_through_connect_to,
        ),
        Trial::test(
            "cli::colour-only-where-it-belongs",
            colour_only_where_it_belongs,
        ),
        Trial::test(
            "cli::progress-bar-and-colour-on-a-terminal",
            progress_bar_and_colour_on_a_terminal,
        )
        .needs(&["script"]),
        Trial::test(
            "cli::junit-is-valid-and-agrees-with-the-exit-code",
            junit_is_valid_and_agrees_with_the_exit_code,
        )
        .needs(&["xmllint"]),
        Trial::test(
            "cli::merged-partitions-equal-the-whole-run",
            merged_partitions_equal_the_whole_run,
        ),
        Trial::test("cli::merged-soaks-add-up", merged_soaks_add_up),
        Trial::test(
            "cli::partitions-share-out-every-case-once",
            partitions_share_out_every_case_once,
        ),
        Trial::test(
            "cli::filters-and-excludes-select-what-they-say",
            filters_and_excludes_select_what_they_say,
        ),
        Trial::test(
            "cli::interrupted-run-writes-its-reports",
            interrupted_run_writes_its_reports,
        ),
        Trial::test(
            "cli::interrupted-soak-and-audit-write-their-reports",
            interrupted_soak_and_audit_write_their_reports,
        ),
        Trial::test(
            "cli::system-trust-without-client-certificate",
            system_trust_without_client_certificate,
        ),
        Trial::test(
            "cli::server-that-does-not-start-is-error",
            server_that_does_not_start_is_error,
        ),
        Trial::test(
            "cli::terminated-run-stops-its-server",
            terminated_run_stops_its_server,
        )
        .needs(&["python3"]),
    ]);
    trials.push(browser::html_report_renders_failures_first());
    trials.extend(audit::trials());
    trials.extend(schema::trials());
    // Real clients under test from their profiles in `clients/`, where the machine has them;
    // listed but ignored where it has not: each run matches the client's baseline.
    let clients = profiled_clients();
    for (client, needs) in &clients {
        trials.push(client_trial(client.clone(), needs));
    }
    // Real servers started from their profiles, where the machine has them: each run matches
    // the server's baseline, and the server is stopped afterwards.
    let servers = profiled_servers();
    let mut every_need: Vec<String> = servers
        .iter()
        .chain(&clients)
        .flat_map(|(_, needs)| needs.iter().cloned())
        .collect();
    every_need.sort_unstable();
    every_need.dedup();
    for (server, needs) in servers {
        trials.push(profile_trial(server, &needs));
    }
    // The committed matrices are what a fresh run produces, where every profiled server and
    // client is here.
    let needs: Vec<&str> = every_need.iter().map(String::as_str).collect();
    trials.push(
        Trial::test(
            "cli::committed-matrix-is-reproduced",
            committed_matrix_is_reproduced,
        )
        .needs(&needs),
    );
    trials
}

fn unknown_key_is_located() -> Result<(), Failed> {
    let dir = scratch("broken");
    let file = dir.join("broken.yaml");
    std::fs::write(
        &file,
        "title: x\nrequirements: []\nprotocols: [h2]\nsteps: []\nbogus: 1\n",
    )
    .map_err(|error| error.to_string())?;
    let (code, stdout, stderr) = misdirect(&["run", "--suite", file.to_str().unwrap_or_default()])?;
    let location = format!("{}:5:1", file.display());
    if code != 3 || !stderr.contains(&location) || !stderr.contains("5 | bogus: 1") {
        return Err(format!("exit {code}\n{stdout}{stderr}").into());
    }
    Ok(())
}

fn broken_profile_is_located() -> Result<(), Failed> {
    let dir = scratch("broken-profile");
    let profile = dir.join("edge.yaml");
    std::fs::write(
        &profile,
        "server: edge\naddress: 127.0.0.1:9\ncerts: c\nport: 3\n",
    )
    .map_err(|error| error.to_string())?;
    let (code, stdout, stderr) =
        misdirect(&["run", "--target", profile.to_str().unwrap_or_default()])?;
    if code != 3 || !stderr.contains("edge.yaml:4:1") || !stderr.contains("port: 3") {
        return Err(format!("exit {code}\n{stdout}{stderr}").into());
    }
    Ok(())
}

fn bench_times_every_protocol() -> Result<(), Failed> {
    let (code, stdout, stderr) = misdirect(&["bench", "--connections", "3", "--warmup", "1"])?;
    let rows = ["h1 ", "h2 ", "h3 "]
        .iter()
        .all(|key| stdout.lines().any(|line| line.starts_with(key)));
    if code != 0 || !rows {
        return Err(format!("exit {code}\n{stdout}{stderr}").into());
    }
    Ok(())
}

fn silent_target_is_error() -> Result<(), Failed> {
    let dir = scratch("silent");
    let certs = certificates_in(&dir)?;
    // Accepts TCP connections (the kernel completes them) but never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
    let address = silent
        .local_addr()
        .map_err(|error| error.to_string())?
        .to_string();
    let junit = dir.join("junit.xml");
    let started = Instant::now();
    let (code, stdout, stderr) = misdirect(&[
        "run",
        "--target",
        &address,
        "--certs",
        certs.to_str().unwrap_or_default(),
        "--filter",
        "server/own-authority",
        "--junit",
        junit.to_str().unwrap_or_default(),
        "--timeout",
        "1",
    ])?;
    let elapsed = started.elapsed();
    drop(silent);
    let reported = Reported::read(&junit)?;
    if code != 2
        || reported.count("ERROR") == 0
        || !reported
            .messages
            .contains("no TLS handshake within 1000 ms")
        || elapsed.as_secs() > 20
    {
        return Err(format!("exit {code} after {elapsed:?}\n{stdout}{stderr}").into());
    }
    Ok(())
}

fn baseline_catches_departures() -> Result<(), Failed> {
    let dir = scratch("baseline");
    let baseline = dir.join("baseline.yaml");
    // The correct target passes own-authority: listing it is an unexpected pass.
    std::fs::write(
        &baseline,
        "server: embedded\ndeviations:\n  - { case: 'server/own-authority [h2]', verdict: fail, reason: listed on purpose }\n",
    )
    .map_err(|error| error.to_string())?;
    let baseline = baseline.to_str().unwrap_or_default();
    let junit = dir.join("junit.xml");
    let junit = junit.to_str().unwrap_or_default();
    let filter = [
        "--filter",
        "server/own-authority",
        "--filter",
        "server/uncovered-authority",
    ];
    let run = |target: &str| {
        let mut args = vec![
            "run",
            "--target",
            target,
            "--baseline",
            baseline,
            "--junit",
            junit,
        ];
        args.extend(filter);
        misdirect(&args)
    };
    let (code, stdout, stderr) = run("embedded")?;
    if code != 1 || !stdout.contains("UNEXPECTED PASS server/own-authority [h2]") {
        return Err(format!("exit {code}\n{stdout}{stderr}").into());
    }
    // A faulty target's FAIL that the baseline does not list is new.
    let (code, stdout, stderr) = run("embedded:no-certificate-check")?;
    if code != 1 || !stdout.contains("NEW FAIL server/uncovered-authority [h2]") {
        return Err(format!("exit {code}\n{stdout}{stderr}").into());
    }
    Ok(())
}

fn unmapped_role_is_skip() -> Result<(), Failed> {
    // A profile that names only the primary: a scenario about the mTLS tenant is SKIP with the
    // reason, the control passes.
    let (code, reported, output) = against_served_profile(
        "unmapped",
        "certs: certs\nnames: { primary: a.test }\n",
        &[],
    )?;
    let skipped = reported.verdict("server/mtls-coalesced [h2]") == Some("SKIP")
        && reported
            .messages
            .contains("maps no name to the `wildcard` role")
        && reported.count("PASS") == 1
        && reported.count("SKIP") == 2;
    if code != 0 || !skipped {
        return Err(format!("exit {code}, {}\n{output}", reported.summary()).into());
    }
    Ok(())
}

fn system_trust_without_client_certificate() -> Result<(), Failed> {
    // Trusting the system's store (here made of misdirect's CA through SSL_CERT_FILE), with no
    // client certificate and the foreign role marked unsupported: the primary is judged, the
    // mTLS and foreign cases are SKIP, each with its reason.
    let (code, reported, output) = against_served_profile(
        "system-trust",
        "trust: system\nunsupported: { foreign: 'no second certificate on this edge' }\n",
        &[("SSL_CERT_FILE", "certs/ca.pem"), ("SSL_CERT_DIR", "")],
    )?;
    let judged = reported.verdict("server/mtls-coalesced [h2]") == Some("SKIP")
        && reported
            .messages
            .contains("no client certificate was given for the mTLS tenant")
        && reported.verdict("server/uncovered-authority [h2]") == Some("SKIP")
        && reported
            .messages
            .contains("no second certificate on this edge")
        && reported.count("PASS") == 1
        && reported.count("SKIP") == 2;
    if code != 0 || !judged {
        return Err(format!("exit {code}, {}\n{output}", reported.summary()).into());
    }
    Ok(())
}

fn server_that_does_not_start_is_error() -> Result<(), Failed> {
    // A launched server that exits at once: exit 2 with its log, within the deadline.
    let dir = scratch("no-start");
    std::fs::write(dir.join("dud.conf.template"), "port {port}\n")
        .map_err(|error| error.to_string())?;
    let profile = dir.join("dud.yaml");
    std::fs::write(
        &profile,
        "server: dud\nlaunch:\n  config: dud.conf.template\n  command: echo cannot read {config}; exit 7\n",
    )
    .map_err(|error| error.to_string())?;
    let (code, stdout, stderr) =
        misdirect(&["run", "--target", profile.to_str().unwrap_or_default()])?;
    if code != 2
        || !stderr.contains("exited with exit status: 7")
        || !stderr.contains("cannot read")
    {
        return Err(format!("exit {code}\n{stdout}{stderr}").into());
    }
    Ok(())
}

fn terminated_run_stops_its_server() -> Result<(), Failed> {
    // A launched server that accepts and never answers; misdirect is told to stop while it
    // waits: it must end at once, with exit 143, and take the server's group with it.
    let dir = scratch("terminated");
    std::fs::write(
        dir.join("silent.py.template"),
        "import socket, time\ns = socket.create_server(('127.0.0.1', {port}))\nheld = []\nwhile True:\n    held.append(s.accept())\n",
    )
    .map_err(|error| error.to_string())?;
    let profile = dir.join("silent.yaml");
    std::fs::write(
        &profile,
        "server: silent\nlaunch:\n  config: silent.py.template\n  command: exec python3 {config}\n",
    )
    .map_err(|error| error.to_string())?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_misdirect"))
        .args([
            "run",
            "--timeout",
            "20",
            "--filter",
            "server/own-authority",
            "--target",
        ])
        .arg(&profile)
        .arg("--work-dir")
        .arg(dir.join("servers"))
        .arg("--junit")
        .arg(dir.join("junit.xml"))
        .arg("--html")
        .arg(dir.join("report.html"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|error| error.to_string())?;
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .map_err(|error| error.to_string())?;
    let mut output = String::new();
    let code = loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            break status.code().unwrap_or(-1);
        }
        if started.elapsed().as_secs() > 10 {
            let _ = child.kill();
            return Err("misdirect did not stop within 10 s of SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Some(mut stdout) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut stdout, &mut output);
    }
    if let Some(mut stderr) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut output);
    }
    let (group, left_behind) = started_group(&output);
    if code != 143 || group.is_empty() || left_behind || !output.contains("interrupted") {
        return Err(
            format!("exit {code}, group {group:?}, left behind {left_behind}\n{output}").into(),
        );
    }
    Ok(())
}

fn committed_matrix_is_reproduced() -> Result<(), Failed> {
    let dir = scratch("matrix");
    // Real clients start slowly while the other trials run beside this one (Chromium above
    // all), so the deadline is twice the default; no verdict depends on it.
    let (code, stdout, stderr) = misdirect(&[
        "matrix",
        "--timeout",
        "10",
        "--out",
        dir.to_str().unwrap_or_default(),
        "--work-dir",
        dir.join("servers").to_str().unwrap_or_default(),
    ])?;
    for matrix in ["README.md", "clients/README.md"] {
        let fresh = std::fs::read_to_string(dir.join(matrix)).unwrap_or_default();
        let committed =
            std::fs::read_to_string(root().join("docs/matrix").join(matrix)).unwrap_or_default();
        if code != 0 || fresh != committed {
            let differing: Vec<String> = fresh
                .lines()
                .zip(committed.lines())
                .filter(|(fresh, committed)| fresh != committed)
                .take(5)
                .map(|(fresh, committed)| format!("fresh:     {fresh}\ncommitted: {committed}"))
                .collect();
            return Err(format!(
                "exit {code}: the matrix differs from docs/matrix/{matrix} (regenerate with `misdirect matrix`)\n{}\n{stdout}{stderr}",
                differing.join("\n")
            )
            .into());
        }
    }
    Ok(())
}

/// Every profile in `targets/` that misdirect launches: its name (the file's stem) and the
/// executables it needs.
fn profiled_servers() -> Vec<(String, Vec<String>)> {
    let targets = root().join("targets");
    let mut profiles: Vec<PathBuf> = std::fs::read_dir(&targets)
        .expect("targets/ is readable")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
                && !path.to_string_lossy().ends_with(".baseline.yaml")
        })
        .collect();
    profiles.sort();
    profiles
        .into_iter()
        .filter_map(|path| {
            let profile = misdirect::under_test::profile::load(&path)
                .unwrap_or_else(|error| panic!("{error}"));
            let name = path.file_stem()?.to_string_lossy().into_owned();
            Some((name, profile.launch?.needs))
        })
        .collect()
}

/// Every client profile in `clients/`: its name (the profile is `clients/<name>.yaml`) and the
/// executables it needs.
fn profiled_clients() -> Vec<(String, Vec<String>)> {
    misdirect::under_test::client_profile::load_folder(&root().join("clients"))
        .unwrap_or_else(|error| panic!("{error}"))
        .into_iter()
        .map(|client| (client.client, client.needs))
        .collect()
}

/// `misdirect serve` on a port of its choosing with its PKI in `dir/certs`: the process and
/// the port it listens on.
fn served_embedded(dir: &Path, serve_args: &[&str]) -> Result<(std::process::Child, u16), Failed> {
    let certs = dir.join("certs");
    // Port 0: the server says where it listens, so no other process can take the port between
    // a check and its bind.
    let mut server = Command::new(env!("CARGO_BIN_EXE_misdirect"))
        .args(["serve", "--for", "30", "--port", "0", "--certs"])
        .arg(&certs)
        .args(serve_args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|error| error.to_string())?;
    let mut banner = String::new();
    let mut stdout = server.stdout.take().map(std::io::BufReader::new);
    if let Some(stdout) = &mut stdout {
        let _ = std::io::BufRead::read_line(stdout, &mut banner);
    }
    let Some(port) = banner
        .split("listening on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse::<u16>().ok())
    else {
        let _ = server.kill();
        let _ = server.wait();
        return Err(format!("misdirect serve did not start: {banner}").into());
    };
    // The pipe stays open for as long as the server runs: what it says later must not fail.
    server.stdout = stdout.map(std::io::BufReader::into_inner);
    Ok((server, port))
}

/// A server of yours named by host and port, reached through `--connect-to` without DNS: the
/// report names it as written and where it was reached.
fn hostname_target_through_connect_to() -> Result<(), Failed> {
    let dir = scratch("connect-to");
    let (mut server, port) = served_embedded(&dir, &[])?;
    let junit = dir.join("junit.xml");
    let outcome = misdirect(&[
        "run",
        "--target",
        "edge.example.com:443",
        "--connect-to",
        &format!("edge.example.com:443:127.0.0.1:{port}"),
        "--certs",
        dir.join("certs").to_str().unwrap_or_default(),
        "--filter",
        "server/own-authority",
        "--protocol",
        "h2",
        "--junit",
        junit.to_str().unwrap_or_default(),
        "--html",
        dir.join("report.html").to_str().unwrap_or_default(),
        "--json",
        dir.join("report.json").to_str().unwrap_or_default(),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    let (code, stdout, stderr) = outcome?;
    let named = format!("edge.example.com:443 at 127.0.0.1:{port}");
    if code != 0 || !stdout.contains(&named) || Reported::read(&junit)?.count("PASS") != 1 {
        return Err(
            format!("expected one PASS against {named}: exit {code}\n{stdout}{stderr}").into(),
        );
    }
    Ok(())
}

/// Runs `server/own-authority`, `server/mtls-coalesced` and `server/uncovered-authority` over
/// HTTP/2 against a running server (the embedded target, served standalone with its PKI in
/// `certs/`) through a profile made of its address and `profile_tail`; `environment` paths are
/// relative to the scratch folder. Returns the exit code, the report and the output.
fn against_served_profile(
    name: &str,
    profile_tail: &str,
    environment: &[(&str, &str)],
) -> Result<(i32, Reported, String), Failed> {
    let dir = scratch(name);
    let (mut server, port) = served_embedded(&dir, &[])?;
    let profile = dir.join("edge.yaml");
    let text = format!("server: edge\naddress: 127.0.0.1:{port}\n{profile_tail}");
    std::fs::write(&profile, text).map_err(|error| error.to_string())?;
    let junit = dir.join("junit.xml");
    let mut command = Command::new(env!("CARGO_BIN_EXE_misdirect"));
    command.args([
        "run",
        "--target",
        profile.to_str().unwrap_or_default(),
        "--protocol",
        "h2",
        "--filter",
        "server/own-authority",
        "--filter",
        "server/mtls-coalesced",
        "--filter",
        "server/uncovered-authority",
        "--junit",
        junit.to_str().unwrap_or_default(),
    ]);
    for (variable, value) in environment {
        let value = if value.is_empty() {
            std::ffi::OsString::new()
        } else {
            dir.join(value).into_os_string()
        };
        command.env(variable, value);
    }
    let outcome = finished(command);
    let _ = server.kill();
    let _ = server.wait();
    let (code, stdout, stderr) = outcome?;
    let reported = Reported::read(&junit)
        .map_err(|error| format!("exit {code}: {error:?}\n{stdout}{stderr}"))?;
    Ok((code, reported, format!("{stdout}{stderr}")))
}

/// Runs the client family against a real client `template` over `protocol`: the client must run
/// and be judged (no ERROR, at least one case that did not SKIP). Ignored where a tool is
/// missing.
/// Runs the client scenarios against `clients/<client>.yaml`, on the protocols it names: the run
/// must match the client's baseline, every case judged (no ERROR, not all SKIP). Ignored where
/// one of `needs` is missing.
fn client_trial(client: String, needs: &[String]) -> Trial {
    let needs: Vec<&str> = needs.iter().map(String::as_str).collect();
    Trial::test(
        format!("cli::client-{client}-matches-its-baseline"),
        move || {
            let dir = scratch(&format!("client-{client}"));
            let junit = dir.join("junit.xml");
            let profile = format!("clients/{client}.yaml");
            // A real client starts slowly on a busy machine (Chromium above all, while the
            // other trials run beside it), so its deadline is twice the default.
            let (code, stdout, stderr) = misdirect(&[
                "run",
                "--client",
                &profile,
                "--timeout",
                "10",
                "--junit",
                junit.to_str().unwrap_or_default(),
            ])?;
            let reported = Reported::read(&junit)?;
            let judged =
                reported.count("ERROR") == 0 && reported.count("SKIP") < reported.verdicts.len();
            let matched = stdout.contains(" 0 new, 0 changed, 0 unexpected passes");
            if code != 0 || !judged || !matched {
                return Err(
                    format!("exit {code}, {}\n{stdout}{stderr}", reported.summary()).into(),
                );
            }
            Ok(())
        },
    )
    .needs(&needs)
}

/// Runs every suite against `targets/<server>.yaml`: the run must match the profile's baseline
/// (errors included, each listed with its reason) and leave no process of the server behind.
/// Ignored where one of `needs` is missing.
fn profile_trial(server: String, needs: &[String]) -> Trial {
    let needs: Vec<&str> = needs.iter().map(String::as_str).collect();
    Trial::test(
        format!("cli::profile-{server}-matches-its-baseline"),
        move || {
            let dir = scratch(&server);
            let junit = dir.join("junit.xml");
            let profile = format!("targets/{server}.yaml");
            let (code, stdout, stderr) = misdirect(&[
                "run",
                "--target",
                &profile,
                "--work-dir",
                dir.join("servers").to_str().unwrap_or_default(),
                "--junit",
                junit.to_str().unwrap_or_default(),
            ])?;
            let (group, left_behind) = started_group(&stdout);
            let matched = stdout.contains(" 0 new, 0 changed, 0 unexpected passes");
            if code != 0 || group.is_empty() || left_behind || !matched {
                return Err(format!(
                    "exit {code}, group {group:?}, left behind {left_behind}\n{stdout}{stderr}"
                )
                .into());
            }
            Ok(())
        },
    )
    .needs(&needs)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// SIGINT and SIGTERM stop a run at once: exit 130 or 143, the cases that finished (here the
/// HTTP/3 ones, SKIP at once) reported as they ended, the others ERROR "interrupted", and the
/// chaos target's connections dropped with the run.
fn interrupted_run_writes_its_reports() -> Result<(), Failed> {
    for (signal, exit) in [("INT", 130), ("TERM", 143)] {
        let dir = scratch(&format!("interrupted-{signal}"));
        let junit = dir.join("junit.xml");
        let mut child = Command::new(env!("CARGO_BIN_EXE_misdirect"))
            .args([
                "run",
                "--target",
                "chaos:tls-then-silence",
                "--timeout",
                "30",
                "--filter",
                "server/own-authority",
                "--protocol",
                "h1",
                "--protocol",
                "h3",
                "--junit",
            ])
            .arg(&junit)
            .arg("--html")
            .arg(dir.join("report.html"))
            .current_dir(root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot start misdirect: {error}"))?;
        std::thread::sleep(Duration::from_millis(1500));
        let status = stop_with(&mut child, signal)?;
        if status.code() != Some(exit) {
            return Err(format!("SIG{signal}: expected exit {exit}, got {status}").into());
        }
        let reported = Reported::read(&junit)?;
        if reported.count("SKIP") != 1 || reported.count("ERROR") != 1 {
            return Err(format!(
                "SIG{signal}: expected the HTTP/3 case SKIP and the HTTP/1.1 case interrupted, got {}",
                reported.summary()
            )
            .into());
        }
        if !reported.messages.contains("interrupted") {
            return Err(format!("SIG{signal}: no case says it was interrupted").into());
        }
    }
    Ok(())
}

/// Sends SIG`signal` to `child` and waits at most 5 s for it to end: its exit status.
fn stop_with(
    child: &mut std::process::Child,
    signal: &str,
) -> Result<std::process::ExitStatus, Failed> {
    let sent = Instant::now();
    let _ = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status();
    loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            return Ok(status);
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("SIG{signal} did not stop misdirect within 5 s").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGINT stops a soak's load and an audit's requests at once: exit 130, and the reports hold
/// what was judged by then.
fn interrupted_soak_and_audit_write_their_reports() -> Result<(), Failed> {
    let dir = scratch("interrupted-soak-and-audit");
    let (mut server, port) = served_embedded(&dir, &[])?;
    let url = format!("https://a.test:{port}/");
    let connect_to = format!("a.test:{port}:127.0.0.1:{port}");
    let ca = dir.join("certs/ca.pem");
    let commands: [(&str, Vec<&str>); 2] = [
        ("soak", vec!["soak", "--for", "60", "--tallies"]),
        (
            "audit",
            vec![
                "audit",
                &url,
                "--connect-to",
                &connect_to,
                "--trust",
                ca.to_str().unwrap_or_default(),
                "--also",
                "c.test",
                "--rate",
                "2",
            ],
        ),
    ];
    let mut outcome = Ok(());
    for (name, mut args) in commands {
        let junit = dir.join(format!("{name}.xml"));
        let tallies = dir.join(format!("{name}-tallies.json"));
        if name == "soak" {
            args.push(tallies.to_str().unwrap_or_default());
        }
        let html = dir.join(format!("{name}.html"));
        let json = dir.join(format!("{name}.json"));
        let spawned = Command::new(env!("CARGO_BIN_EXE_misdirect"))
            .args(&args)
            .args(["--junit", junit.to_str().unwrap_or_default()])
            .args(["--html", html.to_str().unwrap_or_default()])
            .args(["--json", json.to_str().unwrap_or_default()])
            .current_dir(root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = spawned else {
            outcome = Err(format!("cannot start misdirect {name}").into());
            break;
        };
        std::thread::sleep(Duration::from_millis(1500));
        let checked = stop_with(&mut child, "INT").and_then(|status| {
            let reported = Reported::read(&junit)?;
            if status.code() != Some(130) || reported.count("PASS") == 0 {
                return Err(format!("{name}: {status}, {}", reported.summary()).into());
            }
            Ok(())
        });
        if checked.is_err() {
            outcome = checked;
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    outcome
}

/// The JUnit of a passing, a failing, a strict and a baseline run validates against the Jenkins
/// junit-10 rules and, suite by suite, Surefire's 3.0 rules (`docs/schemas/`, with xmllint); and
/// it is red exactly when the exit code is. The JSON report of the same run states that exit
/// code and every case.
fn junit_is_valid_and_agrees_with_the_exit_code() -> Result<(), Failed> {
    let dir = scratch("junit-valid");
    let baseline = dir.join("baseline.yaml");
    let baseline = baseline.to_str().unwrap_or_default();
    let runs: [(&str, &[&str], i32); 5] = [
        ("passing", &["--filter", "server/*"], 0),
        (
            "skipping",
            &[
                "--filter",
                "client/*",
                "--target",
                "127.0.0.1:9",
                "--trust",
                "system",
            ],
            4,
        ),
        (
            "failing",
            &[
                "--target",
                "embedded:no-certificate-check",
                "--write-baseline",
                baseline,
            ],
            1,
        ),
        (
            "strict",
            &["--strict", "--target", "embedded:status-404"],
            1,
        ),
        (
            "baseline",
            &[
                "--target",
                "embedded:no-certificate-check",
                "--baseline",
                baseline,
            ],
            0,
        ),
    ];
    for (name, extra, exit) in runs {
        let junit = dir.join(format!("{name}.xml"));
        let html = dir.join(format!("{name}.html"));
        let json = dir.join(format!("{name}.json"));
        let mut args = vec![
            "run",
            "--junit",
            junit.to_str().unwrap_or_default(),
            "--html",
            html.to_str().unwrap_or_default(),
            "--json",
            json.to_str().unwrap_or_default(),
        ];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = misdirect(&args)?;
        if code != exit {
            return Err(
                format!("{name}: expected exit {exit}, got {code}\n{stdout}{stderr}").into(),
            );
        }
        let xml = std::fs::read_to_string(&junit).map_err(|error| error.to_string())?;
        validate(&junit, "docs/schemas/junit-10.xsd")?;
        for (index, suite) in xml.split("  <testsuite ").skip(1).enumerate() {
            let suite = suite.split("</testsuite>").next().unwrap_or_default();
            let file = dir.join(format!("{name}-suite-{index}.xml"));
            let document = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite {suite}</testsuite>\n"
            );
            std::fs::write(&file, document).map_err(|error| error.to_string())?;
            validate(&file, "docs/schemas/surefire-test-report-3.0.xsd")?;
        }
        let report = quick_junit::Report::deserialize_from_str(&xml)
            .map_err(|error| format!("{name}: {error}"))?;
        let document: serde_json::Value = std::fs::read_to_string(&json)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .ok_or_else(|| format!("{name}: no JSON report"))?;
        let cases = document["cases"].as_array().map_or(0, Vec::len);
        if document["format"] != "misdirect-report/1"
            || document["exit_code"] != code
            || cases != Reported::read(&junit)?.verdicts.len()
        {
            return Err(format!(
                "{name}: exit {code}, but the JSON report says exit {} with {cases} cases",
                document["exit_code"]
            )
            .into());
        }
        let red = report.failures + report.errors > 0;
        if red != (code != 0) {
            return Err(format!(
                "{name}: exit {code} but the JUnit has {} failures and {} errors",
                report.failures, report.errors
            )
            .into());
        }
    }
    Ok(())
}

/// Validates `file` against the schema at `schema` (relative to the project) with xmllint.
fn validate(file: &Path, schema: &str) -> Result<(), Failed> {
    let output = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(root().join(schema))
        .arg(file)
        .output()
        .map_err(|error| format!("cannot run xmllint: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} is not valid under {schema}:\n{}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        )
        .into())
    }
}

/// No colour codes in a pipe (as in CI), with NO_COLOR or with `--color never`; `--color
/// always` forces them.
fn colour_only_where_it_belongs() -> Result<(), Failed> {
    let dir = scratch("colour");
    let junit = dir.join("junit.xml");
    let html = dir.join("report.html");
    let run = |color: &str, no_color: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_misdirect"));
        command.args(["run", "--filter", "server/own-authority", "--color", color]);
        command.arg("--junit").arg(&junit).arg("--html").arg(&html);
        if no_color {
            command.env("NO_COLOR", "1");
        } else {
            command.env_remove("NO_COLOR");
        }
        finished(command)
    };
    for (color, no_color, coloured) in [
        ("auto", false, false),
        ("auto", true, false),
        ("never", false, false),
        ("always", false, true),
    ] {
        let (code, stdout, stderr) = run(color, no_color)?;
        if code != 0 || stdout.contains('\u{1b}') != coloured {
            return Err(format!(
                "--color {color}, NO_COLOR {no_color}: exit {code}, colour codes {}\n{stdout}{stderr}",
                stdout.contains('\u{1b}')
            )
            .into());
        }
    }
    Ok(())
}

/// On a terminal (a pseudo-terminal made by `script`): a progress bar under the case lines, and
/// colour unless NO_COLOR; in a pipe, neither (see [`colour_only_where_it_belongs`]).
fn progress_bar_and_colour_on_a_terminal() -> Result<(), Failed> {
    let dir = scratch("terminal");
    let run = |no_color: bool| {
        let line = format!(
            "{} run --filter server/own-authority --junit {} --html {} --json {}",
            env!("CARGO_BIN_EXE_misdirect"),
            dir.join("junit.xml").display(),
            dir.join("report.html").display(),
            dir.join("report.json").display()
        );
        let mut command = Command::new("script");
        command.args(["-qec", &line, "/dev/null"]);
        command.env("TERM", "xterm");
        if no_color {
            command.env("NO_COLOR", "1");
        } else {
            command.env_remove("NO_COLOR");
        }
        finished(command)
    };
    // A colour is an SGR sequence, ESC [ digits m; the bar moves the cursor with others.
    let coloured = |text: &str| {
        text.split("\u{1b}[").skip(1).any(|rest| {
            let digits = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ';');
            digits.len() < rest.len() && digits.starts_with('m')
        })
    };
    let (code, shown, _) = run(false)?;
    if code != 0 || !shown.contains("/3 cases") || !coloured(&shown) {
        return Err(
            format!("on a terminal: exit {code}, expected a bar and colour:\n{shown}").into(),
        );
    }
    let (code, shown, _) = run(true)?;
    if code != 0 || coloured(&shown) {
        return Err(format!("on a terminal with NO_COLOR: exit {code}, colour:\n{shown}").into());
    }
    let (_, piped, stderr) = misdirect(&[
        "run",
        "--filter",
        "server/own-authority",
        "--junit",
        dir.join("junit.xml").to_str().unwrap_or_default(),
        "--html",
        dir.join("report.html").to_str().unwrap_or_default(),
        "--json",
        dir.join("report.json").to_str().unwrap_or_default(),
    ])?;
    if piped.contains(" cases  ") || stderr.contains(" cases  ") {
        return Err(format!("a bar in a pipe:\n{piped}{stderr}").into());
    }
    Ok(())
}

/// `--junit -` puts the JUnit document alone on stdout; what misdirect says goes to stderr.
fn junit_to_stdout_is_clean() -> Result<(), Failed> {
    let dir = scratch("junit-stdout");
    let html = dir.join("report.html");
    let (code, stdout, stderr) = misdirect(&[
        "run",
        "--filter",
        "server/own-authority",
        "--junit",
        "-",
        "--html",
        html.to_str().unwrap_or_default(),
    ])?;
    let parsed = quick_junit::Report::deserialize_from_str(&stdout);
    if code != 0 || parsed.is_err() || !stderr.contains("cases against embedded") {
        return Err(format!("exit {code}: {parsed:?}\n{stdout}\n--- stderr\n{stderr}").into());
    }
    Ok(())
}

/// `--keylog FILE` gets one NSS key log line per secret, for HTTP/1.1, HTTP/2 and HTTP/3 alike.
fn keylog_writes_tls_secrets() -> Result<(), Failed> {
    let dir = scratch("keylog");
    let keylog = dir.join("keys.log");
    let junit = dir.join("junit.xml");
    let html = dir.join("report.html");
    let (code, stdout, stderr) = misdirect(&[
        "run",
        "--filter",
        "server/own-authority",
        "--keylog",
        keylog.to_str().unwrap_or_default(),
        "--junit",
        junit.to_str().unwrap_or_default(),
        "--html",
        html.to_str().unwrap_or_default(),
    ])?;
    let log = std::fs::read_to_string(&keylog).unwrap_or_default();
    let well_formed = |line: &str| {
        let fields: Vec<&str> = line.split(' ').collect();
        fields.len() == 3
            && fields[1].len() == 64
            && fields[1..]
                .iter()
                .all(|field| field.chars().all(|c| c.is_ascii_hexdigit()))
    };
    let traffic = log
        .lines()
        .filter(|line| line.starts_with("CLIENT_TRAFFIC_SECRET_0 "))
        .count();
    // One connection per protocol, and the control's: at least three.
    if code != 0 || traffic < 3 || !log.lines().all(well_formed) {
        return Err(
            format!("exit {code}, {traffic} traffic secrets\n{log}\n{stdout}{stderr}").into(),
        );
    }
    Ok(())
}

/// Three partitions of a run, merged, give the verdicts and exit code of the whole run.
fn merged_partitions_equal_the_whole_run() -> Result<(), Failed> {
    let dir = scratch("merge");
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let run = |partition: Option<&str>, json: &str| {
        let junit = path(&format!("{json}.xml"));
        let html = path(&format!("{json}.html"));
        let json = path(json);
        let mut args = vec![
            "run",
            "--target",
            "embedded:status-404",
            "--strict",
            "--junit",
            junit.as_str(),
            "--html",
            html.as_str(),
            "--json",
            json.as_str(),
        ];
        if let Some(partition) = partition {
            args.extend(["--partition", partition]);
        }
        misdirect(&args).map(|(code, _, _)| code)
    };
    let verdicts = |json: &str| -> Result<Vec<(String, String)>, Failed> {
        let text = std::fs::read_to_string(dir.join(json)).map_err(|error| error.to_string())?;
        let document: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| error.to_string())?;
        Ok(document["cases"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|case| (case["id"].to_string(), case["verdict"].to_string()))
            .collect())
    };
    let whole = run(None, "whole.json")?;
    for shard in 1..=3 {
        run(
            Some(&format!("hash:{shard}/3")),
            &format!("part{shard}.json"),
        )?;
    }
    let (merged, stdout, stderr) = misdirect(&[
        "merge",
        &path("part1.json"),
        &path("part2.json"),
        &path("part3.json"),
        "--strict",
        "--json",
        &path("merged.json"),
        "--junit",
        &path("merged.xml"),
        "--html",
        &path("merged.html"),
    ])?;
    let (expected, got) = (verdicts("whole.json")?, verdicts("merged.json")?);
    if merged != whole || got != expected || expected.is_empty() {
        return Err(format!(
            "whole run exit {whole}, merged exit {merged}; {} cases whole, {} merged\n{stdout}{stderr}",
            expected.len(),
            got.len()
        )
        .into());
    }
    let (code, _, stderr) = misdirect(&["merge", &path("part1.json"), &path("part1.json")])?;
    if code != 3 || !stderr.contains("is in two reports") {
        return Err(format!("overlapping partitions: exit {code}\n{stderr}").into());
    }
    Ok(())
}

/// Two soaks' tallies, merged, count every request of both, in one histogram, with the
/// verdict of each protocol; a run's report is no soak tally.
fn merged_soaks_add_up() -> Result<(), Failed> {
    let dir = scratch("merge-soaks");
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let requests = |name: &str| -> Result<Vec<(String, u64, u64)>, Failed> {
        let text = std::fs::read_to_string(dir.join(name)).map_err(|error| error.to_string())?;
        let document: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| error.to_string())?;
        Ok(document["tallies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|tally| {
                let counted = tally["authorities"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|authority| authority["counts"]["requests"].as_u64())
                    .sum();
                let recorded = tally["latency"]["recorded"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|pair| pair[1].as_u64())
                    .sum();
                (tally["protocol"].to_string(), counted, recorded)
            })
            .collect())
    };
    for part in ["a", "b"] {
        let (code, stdout, stderr) = misdirect(&[
            "soak",
            "--requests",
            "300",
            "--protocol",
            "h1",
            "--protocol",
            "h2",
            "--junit",
            &path(&format!("{part}.xml")),
            "--html",
            &path(&format!("{part}.html")),
            "--json",
            &path(&format!("{part}.json")),
            "--tallies",
            &path(&format!("{part}-soak.json")),
        ])?;
        if code != 0 {
            return Err(format!("soak {part}: exit {code}\n{stdout}{stderr}").into());
        }
    }
    let (code, stdout, stderr) = misdirect(&[
        "merge",
        &path("a-soak.json"),
        &path("b-soak.json"),
        "--tallies",
        &path("merged-soak.json"),
        "--junit",
        &path("merged.xml"),
        "--html",
        &path("merged.html"),
        "--json",
        &path("merged.json"),
    ])?;
    let merged = requests("merged-soak.json")?;
    let expected = vec![
        ("\"h1\"".to_owned(), 600, 600),
        ("\"h2\"".to_owned(), 600, 600),
    ];
    if code != 0
        || merged != expected
        || Reported::read(&dir.join("merged.xml"))?.count("PASS") != 2
    {
        return Err(format!("merged exit {code}, tallies {merged:?}\n{stdout}{stderr}").into());
    }
    let (code, _, stderr) = misdirect(&["merge", &path("a-soak.json"), &path("a.json")])?;
    if code != 3 {
        return Err(format!("a soak merged with a run's report: exit {code}\n{stderr}").into());
    }
    Ok(())
}

/// The shards of `--partition hash:M/N` and `count:M/N` hold every case of the selection once.
fn partitions_share_out_every_case_once() -> Result<(), Failed> {
    let cases = |partition: Option<&str>| -> Result<Vec<String>, Failed> {
        let mut args = vec!["list", "--format", "json"];
        if let Some(partition) = partition {
            args.extend(["--partition", partition]);
        }
        let (code, stdout, stderr) = misdirect(&args)?;
        let document: serde_json::Value = serde_json::from_str(&stdout)
            .map_err(|error| format!("exit {code}: {error}\n{stdout}{stderr}"))?;
        let mut cases = Vec::new();
        for scenario in document["scenarios"].as_array().into_iter().flatten() {
            for protocol in scenario["protocols"].as_array().into_iter().flatten() {
                cases.push(format!("{} [{}]", scenario["id"], protocol));
            }
        }
        Ok(cases)
    };
    let mut everything = cases(None)?;
    everything.sort();
    for by in ["hash", "count"] {
        let mut shared = Vec::new();
        for shard in 1..=3 {
            let part = cases(Some(&format!("{by}:{shard}/3")))?;
            if part.is_empty() {
                return Err(format!("{by}:{shard}/3 holds no case").into());
            }
            shared.extend(part);
        }
        shared.sort();
        if shared != everything {
            return Err(format!(
                "{by}: the shards hold {} cases, the selection {}",
                shared.len(),
                everything.len()
            )
            .into());
        }
    }
    let (code, _, stderr) = misdirect(&["list", "--partition", "hash:4/3"])?;
    if code != 3 || !stderr.contains("no partition") {
        return Err(format!("hash:4/3: exit {code}\n{stderr}").into());
    }
    Ok(())
}

/// `--filter` keeps, `--exclude` removes (and wins), `--protocol` narrows; `list --format json`
/// says so in its versioned document.
fn filters_and_excludes_select_what_they_say() -> Result<(), Failed> {
    let (code, stdout, stderr) = misdirect(&[
        "list",
        "--format",
        "json",
        "--filter",
        "server/uncovered-*",
        "--filter",
        "server/own-*",
        "--exclude",
        "*-reverse",
        "--protocol",
        "h3",
    ])?;
    let document: serde_json::Value =
        serde_json::from_str(&stdout).map_err(|error| format!("{error}\n{stdout}{stderr}"))?;
    if code != 0 || document["format"] != "misdirect-list/1" {
        return Err(format!("exit {code}\n{stdout}{stderr}").into());
    }
    let listed: Vec<(String, String)> = document["scenarios"]
        .as_array()
        .map(|scenarios| {
            scenarios
                .iter()
                .map(|scenario| {
                    (
                        scenario["id"].as_str().unwrap_or_default().to_owned(),
                        scenario["protocols"].to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let expected = [
        ("server/own-authority".to_owned(), r#"["h3"]"#.to_owned()),
        (
            "server/uncovered-authority".to_owned(),
            r#"["h3"]"#.to_owned(),
        ),
    ];
    if listed != expected {
        return Err(format!("selected {listed:?}, expected {expected:?}").into());
    }
    Ok(())
}

fn misdirect(args: &[&str]) -> Result<(i32, String, String), Failed> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_misdirect"));
    command.args(args);
    finished(command)
}

/// Runs a misdirect command from the project folder: its exit code, stdout and stderr.
fn finished(mut command: Command) -> Result<(i32, String, String), Failed> {
    let output = command
        .current_dir(root())
        .output()
        .map_err(|error| format!("cannot start misdirect: {error}"))?;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("misdirect-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Writes the PKI into `dir/certs` with `misdirect certs`, as an operator would.
fn certificates_in(dir: &Path) -> Result<PathBuf, Failed> {
    let certs = dir.join("certs");
    let (code, _, stderr) = misdirect(&["certs", certs.to_str().unwrap_or_default()])?;
    if code != 0 {
        return Err(format!("certs: exit {code}\n{stderr}").into());
    }
    Ok(certs)
}

/// Whether every one of `tools` is on PATH.
/// A trial that needs tools: where one is missing it is ignored, and its kind (shown beside its
/// name) says which, so that a developer knows what to install (`scripts/install-servers`,
/// `scripts/install-test-tools`); CI installs them all.
pub(super) trait Needs {
    fn needs(self, tools: &[&str]) -> Self;
}

impl Needs for Trial {
    fn needs(self, tools: &[&str]) -> Self {
        let missing: Vec<&str> = tools
            .iter()
            .copied()
            .filter(|tool| !tool_present(tool))
            .collect();
        if missing.is_empty() {
            self
        } else {
            self.with_kind(format!("needs {}", missing.join(" ")))
                .with_ignored_flag(true)
        }
    }
}

fn tool_present(tool: &str) -> bool {
    Command::new("sh")
        .args([
            "-c",
            &format!("PATH=\"$PATH:/usr/sbin:/sbin\" command -v {tool}"),
        ])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// The process group misdirect reported starting, and whether any process of it is still alive.
fn started_group(output: &str) -> (String, bool) {
    let group = output
        .split("(process group ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_default()
        .to_owned();
    // A zombie waiting for init to reap it has ended: only running members count.
    let left_behind = !group.is_empty()
        && Command::new("ps")
            .args(["-eo", "pgid=,stat="])
            .output()
            .is_ok_and(|output| {
                String::from_utf8_lossy(&output.stdout).lines().any(|line| {
                    let mut fields = line.split_whitespace();
                    fields.next() == Some(group.as_str())
                        && !fields.next().is_some_and(|stat| stat.starts_with('Z'))
                })
            });
    (group, left_behind)
}
