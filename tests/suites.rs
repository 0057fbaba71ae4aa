//! `cargo test` entry point for the suites: every scenario against the embedded reference target,
//! every claimed fault detection, and the CLI's contract (exit codes, reports, diagnostics).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

fn main() -> std::process::ExitCode {
    let arguments = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenarios = match misdirect_core::scenario::load_paths(&[root.join("suites")]) {
        Ok(scenarios) => scenarios.into_iter().map(Arc::new).collect::<Vec<_>>(),
        Err(errors) => {
            for error in errors {
                eprintln!("{error}");
            }
            return std::process::ExitCode::from(3);
        }
    };
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime starts"),
    );
    let mut trials = misdirect::harness::trials(&scenarios, &runtime)
        .expect("the embedded targets can be set up");
    trials.extend(cli_trials());
    libtest_mimic::run(&arguments, trials).exit_code()
}

fn misdirect(args: &[&str]) -> Result<(i32, String, String), Failed> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_misdirect"));
    command.args(args);
    finished(command)
}

/// Runs a misdirect command from the project folder: its exit code, stdout and stderr.
fn finished(mut command: Command) -> Result<(i32, String, String), Failed> {
    let output = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
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
    let (code, _, stderr) = misdirect(&["certs", "--out", certs.to_str().unwrap_or_default()])?;
    if code != 0 {
        return Err(format!("certs: exit {code}\n{stderr}").into());
    }
    Ok(certs)
}

fn cli_trials() -> Vec<Trial> {
    let mut trials = vec![
        Trial::test("cli::reference-run-exits-0-and-writes-junit", || {
            let dir = scratch("reference");
            let junit = dir.join("junit.xml");
            let (code, stdout, stderr) =
                misdirect(&["run", "--junit", junit.to_str().unwrap_or_default()])?;
            if code != 0 {
                return Err(format!("exit {code}\n{stdout}{stderr}").into());
            }
            let xml = std::fs::read_to_string(&junit).map_err(|error| error.to_string())?;
            if !xml.contains("<testsuites") || xml.contains("<failure") || xml.contains("<error") {
                return Err(format!("unexpected JUnit report:\n{xml}").into());
            }
            Ok(())
        }),
        Trial::test("cli::unknown-key-exits-3-with-location", || {
            let dir = scratch("broken");
            let file = dir.join("broken.yaml");
            std::fs::write(
                &file,
                "title: x\nrequirements: []\nprotocols: [h2]\nsteps: []\nbogus: 1\n",
            )
            .map_err(|error| error.to_string())?;
            let (code, stdout, stderr) =
                misdirect(&["run", "--suite", file.to_str().unwrap_or_default()])?;
            let location = format!("{}:5:1", file.display());
            if code != 3 || !stderr.contains(&location) || !stderr.contains("5 | bogus: 1") {
                return Err(format!("exit {code}\n{stdout}{stderr}").into());
            }
            Ok(())
        }),
        Trial::test("cli::invalid-arguments-exit-3", || {
            let (code, _, stderr) = misdirect(&["run", "--target", "embedded:no-such-fault"])?;
            if code != 3 || !stderr.contains("unknown fault") {
                return Err(format!("exit {code}\n{stderr}").into());
            }
            Ok(())
        }),
        Trial::test("cli::bench-times-every-protocol", || {
            let (code, stdout, stderr) =
                misdirect(&["bench", "--connections", "3", "--warmup", "1"])?;
            let rows = ["h1 ", "h2 ", "h3 "]
                .iter()
                .all(|key| stdout.lines().any(|line| line.starts_with(key)));
            if code != 0 || !rows {
                return Err(format!("exit {code}\n{stdout}{stderr}").into());
            }
            Ok(())
        }),
        Trial::test("cli::no-h3-endpoint-is-skip-not-error", || {
            // A server of yours without --h3-port: every HTTP/3 case is SKIP with the reason,
            // decided before any packet is sent.
            let dir = scratch("no-h3");
            let certs = certificates_in(&dir)?;
            let junit = dir.join("junit.xml");
            let (code, stdout, stderr) = misdirect(&[
                "run",
                "--target",
                "127.0.0.1:9",
                "--certs",
                certs.to_str().unwrap_or_default(),
                "--protocol",
                "h3",
                "--filter",
                "server/own-authority",
                "--filter",
                "server/h3-*",
                "--junit",
                junit.to_str().unwrap_or_default(),
            ])?;
            let all_skipped = stdout.contains(" 0 passed, 0 failed, 0 warned, 0 info,")
                && stdout.contains("no HTTP/3 endpoint is configured")
                && stdout.contains(" 0 errors");
            if code != 0 || !all_skipped {
                return Err(format!("exit {code}\n{stdout}{stderr}").into());
            }
            Ok(())
        }),
        Trial::test("cli::warn-is-not-fail-without-strict", || {
            let dir = scratch("warn");
            let junit = dir.join("junit.xml");
            let (code, stdout, stderr) = misdirect(&[
                "run",
                "--target",
                "embedded:status-404",
                "--junit",
                junit.to_str().unwrap_or_default(),
            ])?;
            if code != 0 || !stdout.contains("WARN") || stdout.contains("FAIL ") {
                return Err(format!("exit {code}\n{stdout}{stderr}").into());
            }
            Ok(())
        }),
        Trial::test("cli::http1-close-after-421-is-allowed", || {
            // HTTP/1.1 may close after a 421; the harness reopens the connection the same way,
            // so every HTTP/1.1 case still passes against a target that does.
            let dir = scratch("h1-close");
            let junit = dir.join("junit.xml");
            let (code, stdout, stderr) = misdirect(&[
                "run",
                "--strict",
                "--target",
                "embedded:close-after-421",
                "--protocol",
                "h1",
                "--junit",
                junit.to_str().unwrap_or_default(),
            ])?;
            if code != 0 || !stdout.contains(" 0 failed, 0 warned, 0 info, 0 skipped, 0 errors") {
                return Err(format!("exit {code}\n{stdout}{stderr}").into());
            }
            Ok(())
        }),
        Trial::test("cli::silent-target-is-error-within-deadline", || {
            let dir = scratch("silent");
            let certs = certificates_in(&dir)?;
            // Accepts TCP connections (the kernel completes them) but never says a word.
            let silent =
                std::net::TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
            let address = silent
                .local_addr()
                .map_err(|error| error.to_string())?
                .to_string();
            let junit = dir.join("junit.xml");
            let started = std::time::Instant::now();
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
            if code != 2
                || !stdout.contains("no handshake within 1000 ms")
                || elapsed.as_secs() > 20
            {
                return Err(format!("exit {code} after {elapsed:?}\n{stdout}{stderr}").into());
            }
            Ok(())
        }),
        Trial::test("cli::unreachable-target-is-error-not-hang", || {
            let dir = scratch("unreachable");
            let certs = certificates_in(&dir)?;
            // Port 9 (discard) on loopback has no listener here: every case must be ERROR.
            let junit = dir.join("junit.xml");
            let (code, stdout, stderr) = misdirect(&[
                "run",
                "--target",
                "127.0.0.1:9",
                "--certs",
                certs.to_str().unwrap_or_default(),
                "--filter",
                "server/own-authority",
                "--junit",
                junit.to_str().unwrap_or_default(),
                "--timeout",
                "2",
            ])?;
            if code != 2 || !stdout.contains("ERROR") || !junit.exists() {
                return Err(format!("exit {code}\n{stdout}{stderr}").into());
            }
            Ok(())
        }),
    ];
    // Real clients under test, where the machine has them; listed but ignored where it has not.
    trials.push(client_under_test(
        "curl",
        &["curl"],
        "curl --http2 -s -o /dev/null --cacert {ca} {resolve} {urls}",
        "h2",
    ));
    trials.push(client_under_test(
        "node-fetch",
        &["node"],
        "NODE_EXTRA_CA_CERTS={ca} node --require ./examples/node-fetch/resolve-test-names.cjs ./examples/node-fetch/fetch.mjs {urls}",
        "h1",
    ));
    trials.push(client_under_test(
        "chromium",
        &["chromium", "certutil"],
        "sh examples/chromium/fetch.sh {ca} '{driver}'",
        "h2",
    ));
    trials.push(Trial::test("cli::broken-profile-is-located", || {
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
    }));
    trials.push(Trial::test("cli::baseline-catches-unexpected-pass-and-new-failure", || {
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
        let filter = ["--filter", "server/own-authority", "--filter", "server/uncovered-authority"];
        let run = |target: &str| {
            let mut args = vec!["run", "--target", target, "--baseline", baseline, "--junit", junit];
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
    }));
    trials.push(Trial::test("cli::unmapped-role-is-skip", || {
        // A profile that names only the primary: a scenario about the mTLS tenant is SKIP with
        // the reason, the control passes.
        let (code, stdout, stderr) = against_served_profile(
            "unmapped",
            "certs: certs\nnames: { primary: a.test }\n",
            &[],
        )?;
        let skipped = stdout.contains("SKIP server/mtls-coalesced [h2]")
            && stdout.contains("maps no name to the `wildcard` role")
            && stdout.contains("1 passed, 0 failed, 0 warned, 0 info, 2 skipped, 0 errors");
        if code != 0 || !skipped {
            return Err(format!("exit {code}\n{stdout}{stderr}").into());
        }
        Ok(())
    }));
    trials.push(Trial::test(
        "cli::system-trust-without-client-certificate",
        || {
            // Trusting the system's store (here made of misdirect's CA through SSL_CERT_FILE), with
            // no client certificate and the foreign role marked unsupported: the primary is judged,
            // the mTLS and foreign cases are SKIP, each with its reason.
            let (code, stdout, stderr) = against_served_profile(
                "system-trust",
                "trust: system\nunsupported: { foreign: 'no second certificate on this edge' }\n",
                &[("SSL_CERT_FILE", "certs/ca.pem"), ("SSL_CERT_DIR", "")],
            )?;
            let judged = stdout.contains("SKIP server/mtls-coalesced [h2]")
                && stdout.contains("no client certificate was given for the mTLS tenant")
                && stdout.contains("SKIP server/uncovered-authority [h2]")
                && stdout.contains("no second certificate on this edge")
                && stdout.contains("1 passed, 0 failed, 0 warned, 0 info, 2 skipped, 0 errors");
            if code != 0 || !judged {
                return Err(format!("exit {code}\n{stdout}{stderr}").into());
            }
            Ok(())
        },
    ));
    trials.push(Trial::test("cli::server-that-does-not-start-is-error", || {
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
        if code != 2 || !stderr.contains("exited with exit status: 7") || !stderr.contains("cannot read") {
            return Err(format!("exit {code}\n{stdout}{stderr}").into());
        }
        Ok(())
    }));
    trials.push(
        Trial::test("cli::terminated-run-stops-its-server", || {
            // A launched server that accepts and never answers; misdirect is told to stop while
            // it waits: it must end at once, with exit 2, and take the server's group with it.
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
                .args(["run", "--timeout", "20", "--filter", "server/own-authority", "--target"])
                .arg(&profile)
                .arg("--work-dir")
                .arg(dir.join("servers"))
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|error| error.to_string())?;
            std::thread::sleep(std::time::Duration::from_secs(2));
            let started = std::time::Instant::now();
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
                std::thread::sleep(std::time::Duration::from_millis(50));
            };
            if let Some(mut stdout) = child.stdout.take() {
                let _ = std::io::Read::read_to_string(&mut stdout, &mut output);
            }
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut output);
            }
            let (group, left_behind) = started_group(&output);
            if code != 2 || group.is_empty() || left_behind || !output.contains("interrupted") {
                return Err(format!("exit {code}, group {group:?}, left behind {left_behind}\n{output}").into());
            }
            Ok(())
        })
        .with_ignored_flag(!tool_present(&["python3"])),
    );
    // Real servers started from their profiles, where the machine has them: each run matches the
    // server's baseline (the plain nginx configuration fails R9110-7.4-b, see README), and the
    // server is stopped afterwards.
    for (server, needs) in [
        ("nginx", "nginx"),
        ("nginx-host-check", "nginx"),
        ("apache", "apache2"),
        ("apache-sni-insecure", "apache2"),
        ("caddy", "caddy"),
        ("caddy-sni-off", "caddy"),
        ("haproxy", "haproxy"),
        ("h2o", "h2o"),
        ("nghttpx", "nghttpx"),
        ("lighttpd", "lighttpd"),
        ("hypercorn", "hypercorn"),
        ("node-http2", "node"),
        ("node-http2-421", "node"),
    ] {
        trials.push(profile_trial(server, needs));
    }
    // The committed matrix is what a fresh run produces, where every profiled server is here.
    trials.push(
        Trial::test("cli::committed-matrix-is-reproduced", || {
            let dir = scratch("matrix");
            let (code, stdout, stderr) =
                misdirect(&["matrix", "--out", dir.to_str().unwrap_or_default(), "--work-dir", dir.join("servers").to_str().unwrap_or_default()])?;
            let fresh = std::fs::read_to_string(dir.join("README.md")).unwrap_or_default();
            let committed = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/matrix/README.md"),
            )
            .unwrap_or_default();
            if code != 0 || fresh != committed {
                let differing: Vec<String> = fresh
                    .lines()
                    .zip(committed.lines())
                    .filter(|(fresh, committed)| fresh != committed)
                    .take(5)
                    .map(|(fresh, committed)| format!("fresh:     {fresh}\ncommitted: {committed}"))
                    .collect();
                return Err(format!("exit {code}: the matrix differs from docs/matrix/README.md (regenerate with `misdirect matrix`)\n{}\n{stdout}{stderr}", differing.join("\n")).into());
            }
            Ok(())
        })
        .with_ignored_flag(!tool_present(&[
            "nginx",
            "apache2",
            "caddy",
            "haproxy",
            "h2o",
            "nghttpx",
            "lighttpd",
            "hypercorn",
            "node",
        ])),
    );
    for fault in misdirect_core::fault::Fault::ALL {
        let name = format!("cli::fault-{fault}-exits-1-under-strict");
        trials.push(Trial::test(name, move || {
            let dir = scratch(fault.key());
            let junit = dir.join("junit.xml");
            let target = format!("embedded:{fault}");
            let (code, stdout, stderr) = misdirect(&[
                "run",
                "--strict",
                "--target",
                &target,
                "--junit",
                junit.to_str().unwrap_or_default(),
            ])?;
            if code == 1 {
                Ok(())
            } else {
                Err(format!("exit {code}\n{stdout}{stderr}").into())
            }
        }));
    }
    trials
}

/// Runs `server/own-authority`, `server/mtls-coalesced` and `server/uncovered-authority` over
/// HTTP/2 against a running server (the embedded target, served standalone with its PKI in
/// `certs/`) through a profile made of its address and `profile_tail`; `environment` paths
/// are relative to the scratch folder.
fn against_served_profile(
    name: &str,
    profile_tail: &str,
    environment: &[(&str, &str)],
) -> Result<(i32, String, String), Failed> {
    let dir = scratch(name);
    let certs = dir.join("certs");
    // Port 0: the server says where it listens, so no other process can take the port between
    // a check and its bind.
    let mut server = Command::new(env!("CARGO_BIN_EXE_misdirect"))
        .args(["serve", "--for", "30", "--port", "0", "--certs"])
        .arg(&certs)
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
    outcome
}

/// Runs the client family against a real client `template` over `protocol`: the client must run
/// and be judged (no harness error, at least one verdict). Ignored where a `tool` is missing.
fn client_under_test(
    name: &'static str,
    tools: &[&str],
    template: &'static str,
    protocol: &'static str,
) -> Trial {
    let present = tool_present(tools);
    Trial::test(format!("cli::{name}-as-client-under-test"), move || {
        let dir = scratch(name);
        let junit = dir.join("junit.xml");
        let (code, stdout, stderr) = misdirect(&[
            "run",
            "--client",
            template,
            "--protocol",
            protocol,
            "--filter",
            "client/*",
            "--junit",
            junit.to_str().unwrap_or_default(),
        ])?;
        let judged = stdout.contains(" 0 errors")
            && !stdout.contains(" 0 passed, 0 failed, 0 warned, 0 info");
        if code == 2 || code == 3 || !judged {
            return Err(format!("exit {code}\n{stdout}{stderr}").into());
        }
        Ok(())
    })
    .with_ignored_flag(!present)
}

/// Whether every one of `tools` is on PATH.
fn tool_present(tools: &[&str]) -> bool {
    tools.iter().all(|tool| {
        Command::new("sh")
            .args([
                "-c",
                &format!("PATH=\"$PATH:/usr/sbin:/sbin\" command -v {tool}"),
            ])
            .output()
            .is_ok_and(|output| output.status.success())
    })
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

/// Runs every suite against `targets/<server>.yaml`: the run must match the profile's baseline
/// (errors included, each listed with its reason) and leave no process of the server behind.
/// Ignored where `needs` is missing.
fn profile_trial(server: &'static str, needs: &'static str) -> Trial {
    Trial::test(
        format!("cli::profile-{server}-matches-its-baseline"),
        move || {
            let dir = scratch(server);
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
    .with_ignored_flag(!tool_present(&[needs]))
}
