//! `misdirect audit URL…`: a live edge checked from its URL alone, with no profile, no roles
//! and no PKI of misdirect's; the verdicts go to the same terminal summary, reports and exit
//! code as a run's, so that an audit of staging can gate a CI job.

use std::hash::BuildHasher as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::audit::{Edge, Settings};
use crate::client::tls::{Credentials, Roots, Trust};
use misdirect_core::outcome::{Exit, Tally};
use misdirect_core::protocol::Protocol;
use misdirect_core::report::{self, terminal};

use super::address::of_target;
use super::reports::{ReportPaths, command_line};
use super::run::{StopSignals, hostname, now_utc, protocols};
use super::{Failure, runtime};

#[derive(Debug, clap::Args)]
pub(super) struct AuditArgs {
    /// The edges to audit, as https URLs (e.g. `https://www.example.com/`); the URL's path is
    /// asked for on every name.
    #[arg(value_name = "URL", required = true)]
    urls: Vec<String>,
    /// Connect to ADDR:PORT when a URL (or its Alt-Svc) names HOST:PORT, without resolving
    /// HOST (as curl's option; HOST empty for any host): a staging address (repeatable).
    #[arg(long = "connect-to", value_name = "HOST:PORT:ADDR:PORT")]
    connect_to: Vec<String>,
    /// What the edge's certificates must chain to: `system` (the system's trust store) or a
    /// PEM file of CA certificates. A certificate that fails verification is an ERROR.
    #[arg(long, default_value = "system", value_name = "system|FILE")]
    trust: String,
    /// Another hostname of yours, to be refused on the edge's connection unless its
    /// certificate covers it (repeatable).
    #[arg(long, value_name = "HOST")]
    also: Vec<String>,
    /// Names the certificate covers, besides the URL's host, asked at most.
    #[arg(long, default_value_t = 10, value_name = "COUNT")]
    max_names: usize,
    /// Requests sent to each edge, at most (retries included); names are left out to fit.
    #[arg(long, default_value_t = 50, value_name = "COUNT")]
    max_requests: usize,
    /// Requests per second, at most.
    #[arg(long, default_value_t = 5.0, value_name = "PER_SECOND")]
    rate: f64,
    /// Protocols to audit, in order (repeatable): h1, h2, h3; default h2, h1 and h3 where the
    /// edge's Alt-Svc advertises it.
    #[arg(long = "protocol", value_name = "PROTOCOL")]
    protocols: Vec<String>,
    /// Send HEAD instead of GET.
    #[arg(long)]
    head: bool,
    /// Deadline in seconds for each handshake and each request.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    timeout: f64,
    /// Connect once to each edge, print what its certificate says and the plan, and send no
    /// request.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    reports: ReportPaths,
    /// Treat WARN as failing: exit 1, as for a FAIL.
    #[arg(long)]
    strict: bool,
}

/// A URL to audit, parsed: its host, port and path.
fn edge_of(url: &str, connect_to: &[String]) -> Result<Edge, Failure> {
    let invalid = |why: &str| {
        Failure::invalid(format!(
            "`{url}`: {why} (expected https://HOST[:PORT]/PATH)"
        ))
    };
    let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    if uri.scheme_str() != Some("https") {
        return Err(invalid(
            "an audit is about TLS connections, so the URL is https",
        ));
    }
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    if authority.as_str().contains('@') {
        return Err(invalid("user information has no place in an audit's URL"));
    }
    let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
    if host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok()
    {
        return Err(invalid(
            "an IP address: certificates and SNI name hosts, so the URL names one (--connect-to says where it is)",
        ));
    }
    let port = authority.port_u16().unwrap_or(443);
    let path = uri
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_owned();
    let (address, _) = of_target(&format!("{host}:{port}"), connect_to)?;
    Ok(Edge {
        host,
        port,
        path,
        address,
    })
}

fn check(args: &AuditArgs) -> Result<(), Failure> {
    let within =
        |value: f64, low: f64, high: f64| value.is_finite() && (low..=high).contains(&value);
    if !within(args.rate, 0.01, 10_000.0) {
        return Err(Failure::invalid("--rate takes 0.01 to 10000 per second"));
    }
    if !within(args.timeout, 0.01, 600.0) {
        return Err(Failure::invalid("--timeout takes 0.01 to 600 seconds"));
    }
    if !(3..=10_000).contains(&args.max_requests) || args.max_names > 1000 {
        return Err(Failure::invalid(
            "--max-requests takes 3 to 10000, --max-names 0 to 1000",
        ));
    }
    Ok(())
}

pub(super) fn audit(args: &AuditArgs) -> Result<Exit, Failure> {
    check(args)?;
    let mut selected = protocols(&args.protocols)?;
    if selected.is_empty() {
        selected = vec![Protocol::Http2, Protocol::Http1, Protocol::Http3];
    }
    if !selected.iter().any(|protocol| *protocol != Protocol::Http3) {
        return Err(Failure::invalid(
            "an audit learns of HTTP/3 from the Alt-Svc of an h2 or h1 answer: add --protocol h2 or h1",
        ));
    }
    let mut seen = Vec::new();
    selected.retain(|protocol| {
        let first = !seen.contains(protocol);
        seen.push(*protocol);
        first
    });
    if !args.dry_run {
        args.reports.check(None)?;
    }
    let edges = args
        .urls
        .iter()
        .map(|url| edge_of(url, &args.connect_to))
        .collect::<Result<Vec<_>, _>>()?;
    let trust = Trust {
        roots: Roots::named(&args.trust, Path::new("")),
        client_identities: Vec::new(),
    };
    let credentials = Credentials::from_trust(&trust)
        .map_err(|error| Failure::invalid(format!("--trust {}: {error}", args.trust)))?;
    let connect_to = args.connect_to.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let settings = Settings {
        also: args.also.clone(),
        max_names: args.max_names,
        max_requests: args.max_requests,
        rate: args.rate,
        protocols: selected,
        head: args.head,
        deadline: Duration::from_secs_f64(args.timeout),
        // Random keys for every process: the made-up name differs from one audit to the next.
        nonce: format!(
            "{:08x}",
            std::collections::hash_map::RandomState::new().hash_one(std::process::id()) as u32
        ),
        resolve: Arc::new(move |host: &str, port: u16| {
            of_target(&format!("{host}:{port}"), &connect_to)
                .map(|(address, _)| address)
                .map_err(|failure| failure.message)
        }),
        stop: Arc::clone(&stop),
    };
    let label = args.urls.join(" ");
    let started_at = now_utc();
    let runtime = runtime()?;
    let mut stop_signals = StopSignals::install(&runtime)?;
    let began = Instant::now();
    let (results, stopped) = runtime.block_on(async {
        let all = async {
            let mut results = Vec::new();
            for edge in &edges {
                if settings.stop.load(Ordering::Relaxed) {
                    break;
                }
                say!(
                    "auditing https://{}{} at {}",
                    edge.authority(&edge.host),
                    edge.path,
                    edge.address
                );
                let say = |line: &str| say!("  {line}");
                let audited =
                    crate::audit::audit(edge, &settings, &credentials, args.dry_run, &say).await;
                if !args.dry_run {
                    say!("  {} requests sent", audited.requests);
                }
                results.extend(audited.results);
            }
            results
        };
        // A signal stops the requests; the audit under way ends with what it judged.
        stop_signals.finish_or_stop(all, &stop).await
    });
    let wall = began.elapsed();
    if args.dry_run {
        // Nothing was asked; only a first connection that failed has a verdict to show.
        if results.is_empty() {
            return Ok(stopped.unwrap_or(Exit::Clean));
        }
    }
    say_raw!(
        "{}",
        terminal::render(
            &results,
            &format!("audit of {label}"),
            wall,
            terminal::Detail {
                passes: true,
                transcripts: false,
            }
        )
    );
    let exit = stopped.unwrap_or_else(|| Tally::of(&results).exit(args.strict));
    if args.dry_run {
        return Ok(exit);
    }
    let hostname = hostname();
    let command = command_line();
    let target = format!("audit of {label}");
    let run = report::Run {
        target: &target,
        strict: args.strict,
        baseline: None,
        wall,
        started: Some(&started_at),
        hostname: hostname.as_deref(),
        server: None,
        command: Some(&command),
    };
    args.reports.write(&results, &run, exit)?;
    say!("{}", args.reports.said());
    Ok(exit)
}
