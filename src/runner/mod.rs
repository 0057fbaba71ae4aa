//! Runs cases: for one scenario over one protocol, set up the fixture of the target's kind
//! (`fixture`, or the scripted origin of a client case in `client`), carry out the steps
//! (`session`), record what happened (`record`), and hand how the run ended and what was
//! observed to the core, which concludes the verdict.
//!
//! The runner owns every deadline: each connection and each request has the step deadline, each
//! case the case deadline, so a target that hangs turns into ERROR in bounded time. Cases share
//! nothing but the PKI and credentials, so they run concurrently.

mod client;
mod fixture;
mod record;
mod session;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::client::tls::{Credentials, TlsSetupError};
use crate::embedded::StartError;
use crate::embedded::upstream::Upstreams;
use crate::pki::{Pki, PkiError};
use crate::under_test::{Remote, Target};
use fixture::ServerFixture;
use misdirect_core::conclude::{self, Ending, Inapplicable};
use misdirect_core::deployment::{Deployment, Role};
use misdirect_core::evaluate::Evaluation;
use misdirect_core::observe::{Observations, Transcript};
use misdirect_core::outcome::{CaseResult, Cited};
use misdirect_core::protocol::Protocol;
use misdirect_core::scenario::{Authority, AuthorityHost, PortForm, Scenario};
use record::Record;

/// Deadlines and parallelism of a run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// For each connection attempt and each request.
    pub step_timeout: Duration,
    /// For a whole case.
    pub case_timeout: Duration,
    /// Cases in flight at once.
    pub concurrency: usize,
}

impl RunOptions {
    /// The same, with at most `limit` cases in flight where a limit is given.
    pub fn at_most(self, limit: Option<usize>) -> Self {
        Self {
            concurrency: limit.map_or(self.concurrency, |limit| self.concurrency.min(limit)),
            ..self
        }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            step_timeout: Duration::from_secs(5),
            case_timeout: Duration::from_secs(30),
            concurrency: 16,
        }
    }
}

/// A failure to prepare a run.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
}

/// One scenario over one protocol.
#[derive(Debug, Clone)]
pub struct Case {
    pub scenario: Arc<Scenario>,
    pub protocol: Protocol,
}

impl Case {
    pub fn id(&self) -> String {
        misdirect_core::outcome::case_id(&self.scenario.id, self.protocol)
    }
}

/// The cases of `scenarios`, one per protocol each scenario names, in order.
pub fn cases(scenarios: &[Arc<Scenario>]) -> Vec<Case> {
    scenarios
        .iter()
        .flat_map(|scenario| {
            scenario.protocols.iter().map(|protocol| Case {
                scenario: Arc::clone(scenario),
                protocol: *protocol,
            })
        })
        .collect()
}

/// Runs cases against one target.
#[derive(Debug)]
pub struct Runner {
    target: Target,
    deployment: Deployment,
    credentials: Credentials,
    /// The run's PKI, for the embedded target, the origin of client cases and mock upstreams.
    pki: Option<Pki>,
    options: RunOptions,
    /// Mock upstreams shared by the gateway cases against a gateway of yours, started once.
    remote_upstreams: tokio::sync::OnceCell<Upstreams>,
    /// Sets this run's `{case}` paths apart from an earlier run's, whose responses a caching
    /// server may still hold.
    run_mark: String,
}

impl Runner {
    pub fn new(target: Target, options: RunOptions) -> Result<Self, SetupError> {
        let (deployment, credentials, pki) = match &target {
            Target::Embedded(_) | Target::Chaos(_) | Target::Command(_) => {
                let pki = Pki::generate()?;
                (
                    Deployment::standard(),
                    Credentials::from_pki(&pki)?,
                    Some(pki),
                )
            }
            Target::Remote(remote) => (
                remote_deployment(remote),
                Credentials::from_trust(&remote.trust)?,
                // The mock upstreams present the certificates a launched gateway was configured
                // with; behind a gateway of yours, certificates of their own.
                match (&remote.pki, remote.upstreams_port) {
                    (Some(pki), _) => Some(pki.clone()),
                    (None, Some(_)) => Some(Pki::generate()?),
                    (None, None) => None,
                },
            ),
        };
        Ok(Self {
            target,
            deployment,
            credentials,
            pki,
            options,
            remote_upstreams: tokio::sync::OnceCell::new(),
            run_mark: format!(
                "{:x}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_micros())
                    ^ u128::from(std::process::id())
            ),
        })
    }

    /// Logs every connection's TLS secrets to `path` (`--keylog`).
    pub fn log_keys_to(mut self, path: &std::path::Path) -> Result<Self, SetupError> {
        self.credentials.log_keys_to(path)?;
        Ok(self)
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Runs every case, `options.concurrency` at a time; results come back in case order.
    pub async fn run_all(self: &Arc<Self>, cases: Vec<Case>) -> Vec<CaseResult> {
        self.run_until(cases, std::future::pending(), None, &|_| {})
            .await
    }

    /// Why a server of yours cannot be reached over TCP, if it cannot: asked once before a run,
    /// so that an unreachable target is said once, not in every case. The embedded and chaos
    /// targets are in-process and always reachable.
    pub async fn unreachable(&self) -> Option<String> {
        let Target::Remote(remote) = &self.target else {
            return None;
        };
        let attempt = tokio::net::TcpStream::connect(remote.address);
        match tokio::time::timeout(self.options.step_timeout, attempt).await {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(format!("cannot reach {} over TCP: {error}", remote.address)),
            Err(_) => Some(format!(
                "cannot reach {} over TCP: no answer within {} ms",
                remote.address,
                self.options.step_timeout.as_millis()
            )),
        }
    }

    /// Runs every case as [`Runner::run_all`] does, until `stop` completes: then the cases still
    /// running are stopped (dropping what they started) and reported as interrupted, beside
    /// every case that finished.
    ///
    /// With `unreachable` (see [`Runner::unreachable`]), the server cases over TCP are ERROR
    /// with that reason without being run; the HTTP/3 ones still run. `finished` hears of each
    /// case as it ends, for live progress.
    pub async fn run_until(
        self: &Arc<Self>,
        cases: Vec<Case>,
        stop: impl Future<Output = ()>,
        unreachable: Option<&str>,
        finished: &(dyn Fn(&CaseResult) + Sync),
    ) -> Vec<CaseResult> {
        let mut results: Vec<Option<CaseResult>> = vec![None; cases.len()];
        let mut waiting = Vec::new();
        for (index, case) in cases.iter().enumerate() {
            let over_tcp = case.protocol != Protocol::Http3 && case.scenario.client.is_none();
            let plays_every_role =
                conclude::unplayed_role(&case.scenario, &self.deployment).is_none();
            // A case the target cannot play stays SKIP, reachable or not (run_case says why).
            if let Some(reason) = unreachable.filter(|_| over_tcp && plays_every_role) {
                let ending = Ending::SetupFailed(format!("{reason}; the case was not run"));
                let result = self.concluded(case, &ending);
                finished(&result);
                results[index] = Some(result);
                continue;
            }
            waiting.push((index, case.clone()));
        }
        // A case's task is spawned when a slot frees, not before: a spawned task holds its
        // whole future (tens of kilobytes), so spawning every case up front made a run's
        // memory grow with its number of cases.
        let mut waiting = waiting.into_iter();
        let mut tasks = JoinSet::new();
        let mut spawn_next = |tasks: &mut JoinSet<(usize, CaseResult)>| {
            if let Some((index, case)) = waiting.next() {
                let runner = Arc::clone(self);
                tasks.spawn(async move { (index, runner.run_case(&case).await) });
            }
        };
        for _ in 0..self.options.concurrency.max(1) {
            spawn_next(&mut tasks);
        }
        let collect = async {
            while let Some(joined) = tasks.join_next().await {
                spawn_next(&mut tasks);
                if let Ok((index, result)) = joined {
                    finished(&result);
                    results[index] = Some(result);
                }
            }
        };
        let interrupted = tokio::select! {
            () = collect => false,
            () = stop => true,
        };
        // Aborts what still runs; each case's fixture stops what it started as it is dropped.
        tasks.shutdown().await;
        results
            .into_iter()
            .zip(&cases)
            .map(|(finished, case)| {
                finished.unwrap_or_else(|| {
                    let unfinished = if interrupted {
                        Ending::Interrupted
                    } else {
                        Ending::SetupFailed(
                            "the case's task panicked; this is a bug in misdirect".to_owned(),
                        )
                    };
                    self.concluded(case, &unfinished)
                })
            })
            .collect()
    }

    /// The result of a case that ended as `ending` without observing anything.
    fn concluded(&self, case: &Case, ending: &Ending) -> CaseResult {
        let evaluation = conclude::conclude(
            &case.scenario,
            case.protocol,
            &self.deployment,
            &Observations::default(),
            ending,
        );
        result(case, evaluation, Duration::ZERO, Transcript::default())
    }

    /// Runs one case and judges it.
    pub async fn run_case(&self, case: &Case) -> CaseResult {
        let (scenario, protocol) = (case.scenario.as_ref(), case.protocol);
        if let Some(evaluation) = conclude::unplayed_role(scenario, &self.deployment) {
            return result(case, evaluation, Duration::ZERO, Transcript::default());
        }
        let started = Instant::now();
        let record = Arc::new(Record::new(started));
        let ending = match tokio::time::timeout(
            self.options.case_timeout,
            self.execute(scenario, protocol, &record),
        )
        .await
        {
            Ok(Ok(())) => Ending::Completed,
            Ok(Err(Stop::Inapplicable { step, why })) => Ending::Inapplicable { step, why },
            Ok(Err(Stop::Setup(error))) => Ending::SetupFailed(error.to_string()),
            Err(_) => {
                record.event(
                    "case",
                    format!(
                        "case deadline of {} s reached",
                        self.options.case_timeout.as_secs()
                    ),
                );
                Ending::Completed
            }
        };
        let duration = started.elapsed();
        let (observations, transcript) = record.take();
        let evaluation =
            conclude::conclude(scenario, protocol, &self.deployment, &observations, &ending);
        result(case, evaluation, duration, transcript)
    }

    async fn execute(
        &self,
        scenario: &Scenario,
        protocol: Protocol,
        record: &Arc<Record>,
    ) -> Result<(), Stop> {
        if let Some(plan) = &scenario.client {
            return self.execute_client(plan, protocol, record).await;
        }
        let fixture = match &self.target {
            Target::Embedded(fault) => {
                ServerFixture::embedded(self.pki.as_ref(), *fault, scenario.gateway, protocol)
                    .await?
            }
            Target::Chaos(chaos) => ServerFixture::chaos(self.pki.as_ref(), *chaos).await?,
            Target::Remote(remote) => {
                ServerFixture::remote(
                    remote,
                    self.pki.as_ref(),
                    &self.remote_upstreams,
                    scenario.gateway,
                )
                .await?
            }
            Target::Command(_) => return Err(Stop::at_start(Inapplicable::NotAServer)),
        };
        if let Some(log) = &fixture.upstream_log {
            // Read when the case is judged, so that even a case cut short by its deadline
            // reports what reached the backends.
            record.attach_upstream_log(log.clone(), request_prefix(scenario, protocol));
        }
        session::run(self, scenario, protocol, &fixture, record).await
    }

    /// The authority string for `authority` on a target listening on `address`.
    pub fn render_authority(&self, authority: &Authority, address: SocketAddr) -> String {
        let port = address.port();
        let mut host = match authority.host {
            AuthorityHost::Role(role) => self.deployment.name(role).to_owned(),
            AuthorityHost::Address => match address.ip() {
                IpAddr::V4(ip) => ip.to_string(),
                IpAddr::V6(ip) => format!("[{ip}]"),
            },
            AuthorityHost::Nothing | AuthorityHost::Empty => return String::new(),
        };
        if let Some(userinfo) = authority.userinfo {
            host = format!("{}@{host}", self.deployment.name(userinfo));
        }
        if authority.uppercase {
            host = host.to_ascii_uppercase();
        }
        if authority.trailing_dot {
            host.push('.');
        }
        let written = match authority.port {
            PortForm::Target if port == 443 => host,
            PortForm::Target | PortForm::Explicit => format!("{host}:{port}"),
            PortForm::Other => format!("{host}:{}", if port == 443 { 8443 } else { 443 }),
            PortForm::LeadingZero => format!("{host}:0{port}"),
            PortForm::Omitted => host,
            PortForm::Overflowing => format!("{host}:{}", u32::from(port) + 65_536),
        };
        match &authority.suffix {
            Some(suffix) => format!("{written}{suffix}"),
            None => written,
        }
    }
}

/// Why a case's run stopped before its last step.
enum Stop {
    /// From step `step` on, the case does not apply to the target.
    Inapplicable { step: usize, why: Inapplicable },
    /// The harness could not set the case up.
    Setup(CaseSetupError),
}

impl Stop {
    fn at_start(why: Inapplicable) -> Self {
        Self::Inapplicable { step: 0, why }
    }
}

/// What the harness could not set up for a case: its verdict is ERROR with this reason.
#[derive(Debug, thiserror::Error)]
enum CaseSetupError {
    #[error("the embedded target has no PKI")]
    NoPki,
    #[error("failed to start the mock upstreams: {0}")]
    Upstreams(StartError),
    #[error("failed to start the embedded target: {0}")]
    Target(StartError),
    #[error("failed to start the origin: {0}")]
    Origin(StartError),
    #[error("failed to write the CA for the client: {0}")]
    ClientCa(std::io::Error),
}

/// The roles a server of yours plays: those its names map, less an mTLS tenant when no client
/// certificate was given to present to it.
fn remote_deployment(remote: &Remote) -> Deployment {
    let mut deployment = remote.deployment.clone();
    if remote.trust.client_identity(Role::Mtls).is_none() {
        deployment.unmap(
            Role::Mtls,
            "no client certificate was given for the mTLS tenant (`client_certificate:` in the \
             profile, or --client-cert and --client-key)",
        );
    }
    if remote.trust.client_identity(Role::Partner).is_none() {
        deployment.unmap(
            Role::Partner,
            "no client certificate was given for the partner tenant \
             (`partner_client_certificate:` in the profile)",
        );
    }
    deployment
}

/// What every request ID of a case starts with: the session puts it on each request, and the
/// case's share of the mock upstreams' log is read by it.
fn request_prefix(scenario: &Scenario, protocol: Protocol) -> String {
    format!("{}.{protocol}.", scenario.id)
}

/// What `{case}` in a scenario's path stands for: a segment of this case's own in this run, so
/// that cases sharing a caching server never share its entries.
fn case_segment(run_mark: &str, scenario: &Scenario, protocol: Protocol) -> String {
    format!("{run_mark}.{}.{protocol}", scenario.id.replace('/', "."))
}

fn result(
    case: &Case,
    evaluation: Evaluation,
    duration: Duration,
    transcript: Transcript,
) -> CaseResult {
    let scenario = &case.scenario;
    CaseResult {
        scenario: scenario.id.clone(),
        suite: scenario.suite().to_owned(),
        name: scenario.name().to_owned(),
        title: scenario.title.clone(),
        description: scenario.description.clone(),
        protocol: case.protocol,
        requirements: scenario.requirements.iter().map(Cited::from).collect(),
        location: scenario.span.location(),
        verdict: evaluation.verdict,
        findings: evaluation.findings,
        duration,
        transcript,
    }
}
