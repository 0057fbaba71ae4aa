//! `misdirect soak`'s judgement: what each response under load means for the connection it
//! came on, the fixed-size tallies it is counted in, and the verdict a soak ends with.
//!
//! A conformance case sends a handful of requests and keeps every one; a soak sends millions and
//! keeps none. What it keeps is bounded whatever the count: counters per authority, a latency
//! histogram (HDR, microseconds), a timeline whose buckets widen instead of growing in number,
//! and the first [`KEPT_VIOLATIONS`] violations with their evidence. The shell sends the
//! requests and owns the clock; it hands each outcome here with its latency.
//!
//! How a response is judged, by what the connection it came on is valid for:
//! 1. A name the connection's certificate does not cover must be refused (RFC 9110 §7.4): an
//!    answer with content is a violation (FAIL, R9110-7.4-b); a refusal other than 421 is
//!    counted against R9110-7.4-c (WARN above `max_other_refusals`).
//! 2. A name it covers may be served, and then only by that name's own tenant: content from
//!    another tenant is a violation (FAIL, R9110-4.3.3-a, judged as a MUST as
//!    `server/interleaved-tenants` judges it); content that names no tenant cannot be verified
//!    and counts as a failure (step 4). A refusal is allowed and counted.
//! 3. The name the connection was made for should be served: its refusals under load are
//!    spurious (WARN above `max_spurious_refusals`, R9113-9.1.1-d).
//! 4. An outcome that says nothing the target decided (timeout, dropped connection, protocol
//!    violation, a connection that could not be opened) is a failure: above `max_failures` the
//!    soak could not test reliably (ERROR); nothing verified at all is ERROR too.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::deployment::{Role, normalize_host, san_covers};
use crate::observe::{Event, ExchangeOutcome, Transcript};
use crate::outcome::{CaseResult, Cited, Finding};
use crate::protocol::Protocol;
use crate::verdict::{Level, Verdict};

/// How many violations a soak keeps with their evidence; the rest are counted.
pub const KEPT_VIOLATIONS: usize = 16;

/// At most this many timeline buckets: past it, neighbours merge and each bucket spans twice
/// as long.
const MAX_BUCKETS: usize = 120;

/// The latency range the histogram records, in microseconds (1 µs to 10 minutes); slower
/// answers are recorded as the maximum.
const LATENCY_MAX_MICROS: u64 = 600_000_000;

/// How the load is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Long-lived connections, each carrying many requests (concurrent streams over HTTP/2 and
    /// HTTP/3, one after another over HTTP/1.1 keep-alive).
    Streams,
    /// A fresh connection for every request: the handshake is the load.
    Churn,
}

impl Shape {
    pub fn key(self) -> &'static str {
        match self {
            Self::Streams => "streams",
            Self::Churn => "churn",
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// What a request may get on the connection it travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Entitlement {
    /// The connection was made for this name (its SNI): it should be served, by its tenant.
    Own,
    /// The connection's certificate covers the name: served by its tenant, or refused.
    Covered,
    /// The certificate does not cover the name: it must be refused.
    Uncovered,
}

impl Entitlement {
    /// Decides from the SANs of the certificate the connection presented and its SNI: a name
    /// the certificate does not cover is uncovered even when the connection was made for it.
    pub fn of(host: &str, sni: Option<&str>, sans: &[String]) -> Self {
        if !sans.iter().any(|san| san_covers(san, host)) {
            Self::Uncovered
        } else if sni.is_some_and(|sni| normalize_host(sni) == normalize_host(host)) {
            Self::Own
        } else {
            Self::Covered
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Covered => "covered",
            Self::Uncovered => "uncovered",
        }
    }
}

/// What one outcome counts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Content from the right tenant, where content was allowed.
    Served,
    Refused421,
    /// Another refusal: a 4xx/5xx other than 421, a reset, a GOAWAY, a TLS alert.
    RefusedOther,
    /// Content where none was allowed, or from the wrong tenant: the sentence says which.
    Violation(String),
    /// Nothing the target decided: timeout, dropped, not sent, a protocol violation.
    Failed,
    /// Declined before it was processed, so that it may be sent again (RFC 9113 §8.7): not sent
    /// after a GOAWAY, or reset with REFUSED_STREAM (HTTP/2) or H3_REQUEST_REJECTED (HTTP/3),
    /// as servers do when they retire a connection.
    Unprocessed,
}

/// HTTP/2 REFUSED_STREAM and HTTP/3 H3_REQUEST_REJECTED: the request was not processed.
const NOT_PROCESSED: [u64; 2] = [0x7, 0x10b];

/// Judges one outcome of a request for `role`'s name, entitled as given.
pub fn classify(role: Role, entitlement: Entitlement, outcome: &ExchangeOutcome) -> Class {
    match outcome {
        ExchangeOutcome::Unsendable { .. } => return Class::Unprocessed,
        ExchangeOutcome::StreamReset { code, .. } if NOT_PROCESSED.contains(code) => {
            return Class::Unprocessed;
        }
        _ => {}
    }
    match outcome.refused() {
        None => Class::Failed,
        Some(true) => match outcome {
            ExchangeOutcome::Response(response) if response.status == 421 => Class::Refused421,
            _ => Class::RefusedOther,
        },
        Some(false) => {
            let ExchangeOutcome::Response(response) = outcome else {
                return Class::Failed;
            };
            if entitlement == Entitlement::Uncovered {
                return Class::Violation(format!(
                    "served ({outcome}) although the connection's certificate does not cover the name"
                ));
            }
            match (&response.tenant, role.tenant()) {
                (Some(tenant), Some(expected)) if tenant == expected => Class::Served,
                (Some(tenant), Some(expected)) => Class::Violation(format!(
                    "answered by tenant {tenant} instead of {expected} ({outcome})"
                )),
                // Content that names no tenant cannot be verified: no observation either way.
                (None, Some(_)) => Class::Failed,
                (_, None) => Class::Served,
            }
        }
    }
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub requests: u64,
    pub served: u64,
    pub refused_421: u64,
    pub refused_other: u64,
    pub violations: u64,
    pub failed: u64,
}

impl Counts {
    fn count(&mut self, class: &Class) {
        match class {
            Class::Served => self.served += 1,
            Class::Refused421 => self.refused_421 += 1,
            Class::RefusedOther => self.refused_other += 1,
            Class::Violation(_) => self.violations += 1,
            Class::Failed => self.failed += 1,
            // Sent again, and counted then.
            Class::Unprocessed => return,
        }
        self.requests += 1;
    }

    fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.served += other.served;
        self.refused_421 += other.refused_421;
        self.refused_other += other.refused_other;
        self.violations += other.violations;
        self.failed += other.failed;
    }

    fn refused(&self) -> u64 {
        self.refused_421 + self.refused_other
    }
}

/// One authority a soak asks for, and what became of its requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorityTally {
    pub role: Role,
    pub authority: String,
    pub entitlement: Entitlement,
    pub counts: Counts,
}

/// A violation kept with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Time since the soak started.
    #[serde(
        rename = "at_seconds",
        serialize_with = "crate::observe::seconds",
        deserialize_with = "crate::observe::from_seconds"
    )]
    pub at: Duration,
    /// The connection's number, in the order the soak opened them.
    pub connection: u64,
    pub sni: Option<String>,
    pub authority: String,
    pub entitlement: Entitlement,
    pub what: String,
}

/// The outcomes per authority over time, in at most 120 buckets of equal width.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub bucket_seconds: u64,
    /// One entry per bucket, each with one [`Counts`] per authority, in the tally's order.
    pub buckets: Vec<Vec<Counts>>,
}

impl Timeline {
    fn new() -> Self {
        Self {
            bucket_seconds: 1,
            buckets: Vec::new(),
        }
    }

    fn slot(&mut self, at: Duration, authorities: usize) -> &mut Vec<Counts> {
        let mut index = usize::try_from(at.as_secs() / self.bucket_seconds).unwrap_or(usize::MAX);
        while index >= MAX_BUCKETS {
            self.widen();
            index = usize::try_from(at.as_secs() / self.bucket_seconds).unwrap_or(usize::MAX);
        }
        if self.buckets.len() <= index {
            self.buckets
                .resize_with(index + 1, || vec![Counts::default(); authorities]);
        }
        &mut self.buckets[index]
    }

    /// Merges neighbouring buckets: each now spans twice as long.
    fn widen(&mut self) {
        let merged = self
            .buckets
            .chunks(2)
            .map(|pair| {
                let mut sum = pair[0].clone();
                if let Some(second) = pair.get(1) {
                    for (total, counts) in sum.iter_mut().zip(second) {
                        total.add(counts);
                    }
                }
                sum
            })
            .collect();
        self.buckets = merged;
        self.bucket_seconds *= 2;
    }

    fn merge(&mut self, other: &Self, authorities: usize) {
        for (index, bucket) in other.buckets.iter().enumerate() {
            let start = Duration::from_secs(index as u64 * other.bucket_seconds);
            let slot = self.slot(start, authorities);
            for (total, counts) in slot.iter_mut().zip(bucket) {
                total.add(counts);
            }
        }
    }
}

/// Latencies in microseconds, in an HDR histogram of three significant figures (a fixed ~200
/// KB whatever the count), written to JSON as the recorded values and their counts so that
/// partitions merge exactly.
#[derive(Debug, Clone)]
pub struct Latency(hdrhistogram::Histogram<u64>);

impl Latency {
    fn new() -> Self {
        Self(
            hdrhistogram::Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, 3).unwrap_or_else(
                |_| unreachable!("the bounds are constants that hdrhistogram accepts"),
            ),
        )
    }

    fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0
            .saturating_record(micros.clamp(1, LATENCY_MAX_MICROS));
    }

    /// The `quantile` (0.5 is the median) of what was recorded.
    pub fn quantile(&self, quantile: f64) -> Duration {
        Duration::from_micros(self.0.value_at_quantile(quantile))
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.0.max())
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    fn merge(&mut self, other: &Self) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.0.add(&other.0);
    }
}

impl PartialEq for Latency {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Serialize for Latency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let recorded: Vec<(u64, u64)> = self
            .0
            .iter_recorded()
            .map(|value| (value.value_iterated_to(), value.count_at_value()))
            .collect();
        #[derive(Serialize)]
        struct Written {
            unit: &'static str,
            recorded: Vec<(u64, u64)>,
        }
        Written {
            unit: "microseconds",
            recorded,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Written {
            recorded: Vec<(u64, u64)>,
        }
        let written = Written::deserialize(deserializer)?;
        let mut latency = Self::new();
        for (value, count) in written.recorded {
            latency
                .0
                .record_n(value.clamp(1, LATENCY_MAX_MICROS), count)
                .map_err(|error| {
                    serde::de::Error::custom(format!("latency {value} µs: {error}"))
                })?;
        }
        Ok(latency)
    }
}

/// Everything a soak (or a partition of one) keeps: bounded whatever it sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakTally {
    /// What the load was, in words (the case's title).
    #[serde(default)]
    pub title: String,
    pub protocol: Protocol,
    pub shape: Shape,
    /// Connections opened, and those that could not be.
    pub handshakes: u64,
    pub connect_failures: u64,
    /// The first reason a connection could not be opened.
    pub connect_failure: Option<String>,
    /// Why the target does not speak the protocol (ALPN), if it said so: the soak does not
    /// apply.
    pub unsupported: Option<String>,
    /// Requests the target declined unprocessed ([`Class::Unprocessed`]), sent again.
    pub unprocessed: u64,
    pub authorities: Vec<AuthorityTally>,
    pub latency: Latency,
    pub timeline: Timeline,
    /// The first [`KEPT_VIOLATIONS`] violations.
    pub violations: Vec<Violation>,
    /// How long the load ran; merged partitions ran side by side, so the longest counts.
    #[serde(
        rename = "seconds",
        serialize_with = "crate::observe::seconds",
        deserialize_with = "crate::observe::from_seconds"
    )]
    pub wall: Duration,
}

/// Where one outcome came from.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// Time since the soak started.
    pub at: Duration,
    pub connection: u64,
    pub sni: Option<&'a str>,
    /// Index into [`SoakTally::authorities`].
    pub authority: usize,
    pub entitlement: Entitlement,
    pub latency: Duration,
}

/// Why two tallies cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("soak reports cannot be merged: {0}")]
pub struct MergeError(String);

impl SoakTally {
    /// A tally for requests to these roles' names, as `authority(role)` writes them.
    pub fn new(protocol: Protocol, shape: Shape, roles: &[(Role, String)]) -> Self {
        Self {
            title: String::new(),
            protocol,
            shape,
            handshakes: 0,
            connect_failures: 0,
            connect_failure: None,
            unsupported: None,
            unprocessed: 0,
            authorities: roles
                .iter()
                .map(|(role, authority)| AuthorityTally {
                    role: *role,
                    authority: authority.clone(),
                    entitlement: Entitlement::Uncovered,
                    counts: Counts::default(),
                })
                .collect(),
            latency: Latency::new(),
            timeline: Timeline::new(),
            violations: Vec::new(),
            wall: Duration::ZERO,
        }
    }

    pub fn handshake(&mut self) {
        self.handshakes += 1;
    }

    pub fn connect_failed(&mut self, detail: &str) {
        self.connect_failures += 1;
        if self.connect_failure.is_none() {
            self.connect_failure = Some(detail.to_owned());
        }
    }

    /// The target does not speak the protocol: nothing more to count.
    pub fn unsupported(&mut self, detail: &str) {
        if self.unsupported.is_none() {
            self.unsupported = Some(detail.to_owned());
        }
    }

    /// Counts one outcome; returns its class, for live counters.
    pub fn record(&mut self, asked: Asked<'_>, outcome: &ExchangeOutcome) -> Class {
        let Some(authority) = self.authorities.get_mut(asked.authority) else {
            return Class::Failed;
        };
        let class = classify(authority.role, asked.entitlement, outcome);
        if class == Class::Unprocessed {
            self.unprocessed += 1;
            return class;
        }
        authority.entitlement = asked.entitlement;
        authority.counts.count(&class);
        let count = self.authorities.len();
        if let Some(counts) = self.timeline.slot(asked.at, count).get_mut(asked.authority) {
            counts.count(&class);
        }
        if !matches!(class, Class::Failed) {
            self.latency.record(asked.latency);
        }
        if let Class::Violation(what) = &class
            && self.violations.len() < KEPT_VIOLATIONS
        {
            self.violations.push(Violation {
                at: asked.at,
                connection: asked.connection,
                sni: asked.sni.map(str::to_owned),
                authority: self.authorities[asked.authority].authority.clone(),
                entitlement: asked.entitlement,
                what: what.clone(),
            });
        }
        class
    }

    /// Adds another partition's tally of the same protocol, shape and authorities.
    pub fn merge(&mut self, other: &Self) -> Result<(), MergeError> {
        let same_authorities = self.authorities.len() == other.authorities.len()
            && self
                .authorities
                .iter()
                .zip(&other.authorities)
                .all(|(mine, theirs)| mine.role == theirs.role);
        if self.protocol != other.protocol || self.shape != other.shape || !same_authorities {
            return Err(MergeError(format!(
                "{} {} and {} {} differ in shape",
                self.protocol.key(),
                self.shape,
                other.protocol.key(),
                other.shape
            )));
        }
        self.handshakes += other.handshakes;
        self.connect_failures += other.connect_failures;
        self.unprocessed += other.unprocessed;
        if self.connect_failure.is_none() {
            self.connect_failure.clone_from(&other.connect_failure);
        }
        if self.unsupported.is_none() {
            self.unsupported.clone_from(&other.unsupported);
        }
        for (mine, theirs) in self.authorities.iter_mut().zip(&other.authorities) {
            mine.counts.add(&theirs.counts);
            if theirs.counts.requests > 0 {
                mine.entitlement = theirs.entitlement;
            }
        }
        self.latency.merge(&other.latency);
        let count = self.authorities.len();
        self.timeline.merge(&other.timeline, count);
        let room = KEPT_VIOLATIONS.saturating_sub(self.violations.len());
        self.violations
            .extend(other.violations.iter().take(room).cloned());
        self.wall = self.wall.max(other.wall);
        Ok(())
    }

    /// Every authority's counts added up.
    pub fn total(&self) -> Counts {
        let mut total = Counts::default();
        for authority in &self.authorities {
            total.add(&authority.counts);
        }
        total
    }

    /// Requests and handshakes per second of wall time.
    pub fn rates(&self) -> (f64, f64) {
        let seconds = self.wall.as_secs_f64().max(f64::EPSILON);
        (
            self.total().requests as f64 / seconds,
            self.handshakes as f64 / seconds,
        )
    }

    /// Each authority's share of the requests and its rates of 421, other refusals, violations
    /// and failures.
    pub fn by_authority(&self) -> String {
        let total = self.total().requests;
        self.authorities
            .iter()
            .map(|authority| {
                let counts = &authority.counts;
                format!(
                    "{} ({}) {} of requests, 421 {}, other refusals {}, violations {}, failed {}",
                    authority.authority,
                    authority.entitlement.key(),
                    percent(rate(counts.requests, total)),
                    percent(rate(counts.refused_421, counts.requests)),
                    percent(rate(counts.refused_other, counts.requests)),
                    percent(rate(counts.violations, counts.requests)),
                    percent(rate(counts.failed, counts.requests)),
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The timeline as transcript events: per bucket, each authority's requests and its 421
    /// and failure rates.
    fn timeline_events(&self) -> impl Iterator<Item = Event> + '_ {
        let width = self.timeline.bucket_seconds;
        self.timeline
            .buckets
            .iter()
            .enumerate()
            .map(move |(index, bucket)| Event {
                at: Duration::from_secs(index as u64 * width),
                connection: format!("{width} s"),
                what: bucket
                    .iter()
                    .zip(&self.authorities)
                    .map(|(counts, authority)| {
                        format!(
                            "{} {} requests, 421 {}, failed {}",
                            authority.authority,
                            counts.requests,
                            percent(rate(counts.refused_421, counts.requests)),
                            percent(rate(counts.failed, counts.requests)),
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            })
    }

    /// One line of figures: counts, rates and latency percentiles.
    pub fn figures(&self) -> String {
        let total = self.total();
        let (requests, handshakes) = self.rates();
        let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
        format!(
            "{} requests in {:.2} s ({requests:.0}/s), {} handshakes ({handshakes:.0}/s); \
             served {}, 421 {}, other refusals {}, violations {}, failed {}, sent again {}; \
             latency p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
            total.requests,
            self.wall.as_secs_f64(),
            self.handshakes,
            total.served,
            total.refused_421,
            total.refused_other,
            total.violations,
            total.failed + self.connect_failures,
            self.unprocessed,
            ms(self.latency.quantile(0.5)),
            ms(self.latency.quantile(0.9)),
            ms(self.latency.quantile(0.99)),
            ms(self.latency.quantile(0.999)),
            ms(self.latency.max()),
        )
    }
}

/// The rates a soak tolerates before it judges; each is a fraction of the requests concerned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Refusals of the connection's own name (step 3): above it, WARN.
    pub max_spurious_refusals: f64,
    /// Refusals of uncovered names other than 421 (step 1): above it, WARN.
    pub max_other_refusals: f64,
    /// Requests and connections that failed without an answer (step 4): above it, ERROR.
    pub max_failures: f64,
}

impl Default for Thresholds {
    /// One refusal of the own name in a thousand, no refusal of an uncovered name but 421, one
    /// failure in a hundred.
    fn default() -> Self {
        Self {
            max_spurious_refusals: 0.001,
            max_other_refusals: 0.0,
            max_failures: 0.01,
        }
    }
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn percent(fraction: f64) -> String {
    format!("{:.3}%", fraction * 100.0)
}

/// The requirements a soak judges by.
fn requirements() -> Vec<Cited> {
    vec![
        Cited::from_catalogue("R9110-7.4-b", Level::Must),
        Cited::from_catalogue("R9110-4.3.3-a", Level::Must),
        Cited::from_catalogue("R9110-7.4-c", Level::Should),
        Cited::from_catalogue("R9113-9.1.1-d", Level::Should),
    ]
}

/// The format and version of the tallies a soak writes (`--tallies`) for `misdirect merge`.
pub const FORMAT: &str = "misdirect-soak/1";

/// What a soak writes for `misdirect merge`: its tallies, bounded, and the thresholds they were
/// judged by, so that the tallies of soaks run side by side (one per CI job or machine) add up
/// to one soak judged the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakReport {
    pub format: String,
    pub target: String,
    pub thresholds: Thresholds,
    pub tallies: Vec<SoakTally>,
}

impl SoakReport {
    pub fn new(target: &str, thresholds: Thresholds, tallies: Vec<SoakTally>) -> Self {
        Self {
            format: FORMAT.to_owned(),
            target: target.to_owned(),
            thresholds,
            tallies,
        }
    }

    /// Reads a report of this format version.
    pub fn parse(text: &str) -> Result<Self, String> {
        let report: Self = serde_json::from_str(text).map_err(|error| error.to_string())?;
        if report.format != FORMAT {
            return Err(format!(
                "format {} is not {FORMAT}, which this misdirect reads",
                report.format
            ));
        }
        Ok(report)
    }

    /// Adds up reports of the same target and thresholds: the tallies of each protocol and
    /// shape merged (counts and histograms added, the longest wall time kept), in the order
    /// first seen.
    pub fn merge(reports: &[Self]) -> Result<Self, MergeError> {
        let Some(first) = reports.first() else {
            return Err(MergeError("no report to merge".to_owned()));
        };
        let mut merged = Self::new(&first.target, first.thresholds, Vec::new());
        for report in reports {
            if report.target != first.target || report.thresholds != first.thresholds {
                return Err(MergeError(format!(
                    "a soak of {} and one of {}, or with other thresholds",
                    first.target, report.target
                )));
            }
            for tally in &report.tallies {
                match merged
                    .tallies
                    .iter_mut()
                    .find(|known| (known.protocol, known.shape) == (tally.protocol, tally.shape))
                {
                    Some(known) => known.merge(tally)?,
                    None => merged.tallies.push(tally.clone()),
                }
            }
        }
        Ok(merged)
    }
}

/// A soak that could not apply to the target (a protocol it does not serve), as a SKIP.
pub fn skipped(protocol: Protocol, shape: Shape, title: &str, reason: &str) -> CaseResult {
    let finding = Finding {
        verdict: Verdict::Skip,
        requirement: None,
        expected: "a target that serves the protocol".to_owned(),
        observed: reason.to_owned(),
        location: None,
    };
    case(
        &SoakTally::new(protocol, shape, &[]),
        title,
        vec![finding],
        None,
    )
}

/// The verdict of a soak, as a case like any other: the same reporters render it.
pub fn judge(tally: &SoakTally, thresholds: &Thresholds) -> CaseResult {
    let title = tally.title.as_str();
    let total = tally.total();
    if let Some(reason) = tally.unsupported.as_deref().filter(|_| total.requests == 0) {
        return skipped(tally.protocol, tally.shape, title, reason);
    }
    let mut findings = Vec::new();
    let finding =
        |verdict, requirement: Option<Cited>, expected: String, observed: String| Finding {
            verdict,
            requirement,
            expected,
            observed,
            location: None,
        };
    // Step 1 and 2: violations, by the rule they break.
    for (entitlement, id, expected) in [
        (
            Entitlement::Uncovered,
            "R9110-7.4-b",
            "every request for a name the connection's certificate does not cover refused",
        ),
        (
            Entitlement::Covered,
            "R9110-4.3.3-a",
            "every request the connection may carry answered by its own tenant or refused",
        ),
        (
            Entitlement::Own,
            "R9110-4.3.3-a",
            "every request for the connection's own name answered by its own tenant or refused",
        ),
    ] {
        let broken: Vec<&AuthorityTally> = tally
            .authorities
            .iter()
            .filter(|authority| {
                authority.entitlement == entitlement && authority.counts.violations > 0
            })
            .collect();
        if broken.is_empty() {
            continue;
        }
        let observed = broken
            .iter()
            .map(|authority| {
                let first = tally
                    .violations
                    .iter()
                    .find(|violation| violation.authority == authority.authority)
                    .map(|violation| format!(", first: {}", violation.what))
                    .unwrap_or_default();
                format!(
                    "{} of {} requests for {} violated it{first}",
                    authority.counts.violations, authority.counts.requests, authority.authority
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        findings.push(finding(
            Verdict::Fail,
            Some(Cited::from_catalogue(id, Level::Must)),
            expected.to_owned(),
            observed,
        ));
    }
    // Step 1: uncovered names refused otherwise than with 421.
    for authority in tally
        .authorities
        .iter()
        .filter(|authority| authority.entitlement == Entitlement::Uncovered)
    {
        let other = rate(authority.counts.refused_other, authority.counts.refused());
        if authority.counts.refused_other > 0 && other > thresholds.max_other_refusals {
            findings.push(finding(
                Verdict::Warn,
                Some(Cited::from_catalogue("R9110-7.4-c", Level::Should)),
                format!(
                    "requests for {} refused with 421 (other refusals at most {})",
                    authority.authority,
                    percent(thresholds.max_other_refusals)
                ),
                format!(
                    "{} of {} refusals were not 421 ({})",
                    authority.counts.refused_other,
                    authority.counts.refused(),
                    percent(other)
                ),
            ));
        }
    }
    // Step 3: the connection's own name refused under load.
    for authority in tally
        .authorities
        .iter()
        .filter(|authority| authority.entitlement == Entitlement::Own)
    {
        let refused = rate(authority.counts.refused(), authority.counts.requests);
        if refused > thresholds.max_spurious_refusals {
            findings.push(finding(
                Verdict::Warn,
                Some(Cited::from_catalogue("R9113-9.1.1-d", Level::Should)),
                format!(
                    "requests for {} served on connections made for it (refusals at most {})",
                    authority.authority,
                    percent(thresholds.max_spurious_refusals)
                ),
                format!(
                    "{} of {} refused ({}; {} with 421)",
                    authority.counts.refused(),
                    authority.counts.requests,
                    percent(refused),
                    authority.counts.refused_421
                ),
            ));
        }
    }
    // The premise: connections made for the primary present a certificate that covers it.
    if let Some(primary) = tally.authorities.iter().find(|authority| {
        authority.role == Role::Primary
            && authority.entitlement == Entitlement::Uncovered
            && authority.counts.requests > 0
    }) {
        findings.push(finding(
            Verdict::Error,
            None,
            format!(
                "connections made for {} with a certificate that covers it",
                primary.authority
            ),
            "a certificate that does not cover the name the connection was made for; nothing \
             is entitled to be served on it"
                .to_owned(),
        ));
    }
    // Step 4: could the soak test at all?
    let attempts = total.requests + tally.connect_failures;
    let failed = total.failed + tally.connect_failures;
    if total.served + total.refused() + total.violations == 0 {
        findings.push(finding(
            Verdict::Error,
            None,
            "answers from the target to verify".to_owned(),
            match &tally.connect_failure {
                Some(reason) => format!("none; connections failed: {reason}"),
                None => format!("none of {} requests was answered", total.requests),
            },
        ));
    } else if rate(failed, attempts) > thresholds.max_failures {
        findings.push(finding(
            Verdict::Error,
            None,
            format!(
                "at most {} of requests and connections failing without an answer",
                percent(thresholds.max_failures)
            ),
            format!(
                "{failed} of {attempts} failed ({}){}",
                percent(rate(failed, attempts)),
                tally
                    .connect_failure
                    .as_ref()
                    .map(|reason| format!("; first connection failure: {reason}"))
                    .unwrap_or_default()
            ),
        ));
    }
    let figures = format!(
        "{}. By authority: {}",
        tally.figures(),
        tally.by_authority()
    );
    case(tally, title, findings, Some(figures))
}

/// A soak's case: its verdict the greatest of its findings', its kept violations the transcript.
fn case(
    tally: &SoakTally,
    title: &str,
    findings: Vec<Finding>,
    figures: Option<String>,
) -> CaseResult {
    let verdict = Finding::gravest(&findings);
    let scenario = format!("soak/{}", tally.shape);
    CaseResult {
        name: format!("{scenario} [{}]", tally.protocol.key()),
        scenario,
        suite: "soak".to_owned(),
        title: title.to_owned(),
        description: figures,
        protocol: tally.protocol,
        requirements: requirements(),
        location: "misdirect soak".to_owned(),
        verdict,
        findings,
        duration: tally.wall,
        transcript: Transcript {
            events: tally
                .violations
                .iter()
                .map(|violation| Event {
                    at: violation.at,
                    connection: format!(
                        "connection {} (SNI {})",
                        violation.connection,
                        violation.sni.as_deref().unwrap_or("none")
                    ),
                    what: format!(
                        "{} ({} on this connection): {}",
                        violation.authority,
                        violation.entitlement.key(),
                        violation.what
                    ),
                })
                .chain(tally.timeline_events())
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Response;

    fn response(status: u16, tenant: Option<&str>) -> ExchangeOutcome {
        ExchangeOutcome::Response(Response::named(status, tenant))
    }

    fn tally() -> SoakTally {
        SoakTally::new(
            Protocol::Http2,
            Shape::Streams,
            &[
                (Role::Primary, "a.test:1".to_owned()),
                (Role::Sibling, "b.test:1".to_owned()),
                (Role::Foreign, "c.test:1".to_owned()),
            ],
        )
    }

    fn asked(authority: usize, entitlement: Entitlement, seconds: u64) -> Asked<'static> {
        Asked {
            at: Duration::from_secs(seconds),
            connection: 0,
            sni: Some("a.test"),
            authority,
            entitlement,
            latency: Duration::from_micros(800),
        }
    }

    #[test]
    fn entitlement_follows_sni_and_certificate() {
        let sans = ["a.test".to_owned(), "b.test".to_owned()];
        assert_eq!(
            Entitlement::of("A.test.", Some("a.test"), &sans),
            Entitlement::Own
        );
        assert_eq!(
            Entitlement::of("b.test", Some("a.test"), &sans),
            Entitlement::Covered
        );
        assert_eq!(
            Entitlement::of("c.test", Some("a.test"), &sans),
            Entitlement::Uncovered
        );
        // A certificate for another name: the connection's own name is not covered.
        let wrong = ["c.test".to_owned()];
        assert_eq!(
            Entitlement::of("a.test", Some("a.test"), &wrong),
            Entitlement::Uncovered
        );
    }

    #[test]
    fn each_outcome_is_classed_by_the_connection_it_came_on() {
        let own = Entitlement::Own;
        assert_eq!(
            classify(Role::Primary, own, &response(200, Some("alpha"))),
            Class::Served
        );
        assert!(matches!(
            classify(Role::Primary, own, &response(200, Some("charlie"))),
            Class::Violation(_)
        ));
        assert_eq!(
            classify(Role::Primary, own, &response(200, None)),
            Class::Failed
        );
        assert!(matches!(
            classify(
                Role::Foreign,
                Entitlement::Uncovered,
                &response(200, Some("charlie"))
            ),
            Class::Violation(_)
        ));
        assert_eq!(
            classify(Role::Foreign, Entitlement::Uncovered, &response(421, None)),
            Class::Refused421
        );
        assert_eq!(
            classify(Role::Foreign, Entitlement::Uncovered, &response(404, None)),
            Class::RefusedOther
        );
        let timeout = ExchangeOutcome::TimedOut {
            after: Duration::from_secs(5),
        };
        assert_eq!(
            classify(Role::Foreign, Entitlement::Uncovered, &timeout),
            Class::Failed
        );
    }

    #[test]
    fn a_clean_soak_passes_and_a_violation_fails() {
        let mut clean = tally();
        for second in 0..3 {
            clean.record(
                asked(0, Entitlement::Own, second),
                &response(200, Some("alpha")),
            );
            clean.record(
                asked(1, Entitlement::Covered, second),
                &response(200, Some("bravo")),
            );
            clean.record(
                asked(2, Entitlement::Uncovered, second),
                &response(421, None),
            );
        }
        clean.wall = Duration::from_secs(3);
        let result = judge(&clean, &Thresholds::default());
        assert_eq!(result.verdict, Verdict::Pass, "{:?}", result.findings);

        let mut broken = clean.clone();
        broken.record(
            asked(2, Entitlement::Uncovered, 2),
            &response(200, Some("alpha")),
        );
        let result = judge(&broken, &Thresholds::default());
        assert_eq!(result.verdict, Verdict::Fail);
        assert_eq!(
            result.findings[0]
                .requirement
                .as_ref()
                .map(|cited| cited.id.as_str()),
            Some("R9110-7.4-b")
        );
        // The violation, then one line per second of the timeline.
        assert_eq!(result.transcript.events.len(), 1 + 3);
        assert!(
            result.transcript.events[1]
                .what
                .contains("a.test:1 1 requests, 421 0.000%")
        );
    }

    #[test]
    fn thresholds_separate_warnings_from_errors() {
        let mut soak = tally();
        for _ in 0..100 {
            soak.record(asked(0, Entitlement::Own, 0), &response(200, Some("alpha")));
            soak.record(asked(2, Entitlement::Uncovered, 0), &response(421, None));
        }
        soak.record(asked(0, Entitlement::Own, 0), &response(421, None));
        soak.record(asked(2, Entitlement::Uncovered, 0), &response(403, None));
        let result = judge(&soak, &Thresholds::default());
        assert_eq!(result.verdict, Verdict::Warn);
        assert_eq!(result.findings.len(), 2);

        let mut failing = tally();
        failing.record(asked(0, Entitlement::Own, 0), &response(200, Some("alpha")));
        for _ in 0..5 {
            failing.record(
                asked(0, Entitlement::Own, 0),
                &ExchangeOutcome::TimedOut {
                    after: Duration::from_secs(1),
                },
            );
        }
        assert_eq!(
            judge(&failing, &Thresholds::default()).verdict,
            Verdict::Error
        );

        let mut silent = tally();
        silent.connect_failed("refused");
        assert_eq!(
            judge(&silent, &Thresholds::default()).verdict,
            Verdict::Error
        );
    }

    #[test]
    fn the_timeline_stays_bounded_and_partitions_merge() {
        let mut long = tally();
        for second in (0..10_000).step_by(7) {
            long.record(
                asked(0, Entitlement::Own, second),
                &response(200, Some("alpha")),
            );
        }
        assert!(long.timeline.buckets.len() <= MAX_BUCKETS);
        let total: u64 = long
            .timeline
            .buckets
            .iter()
            .map(|bucket| bucket[0].requests)
            .sum();
        assert_eq!(total, long.total().requests);

        let mut merged = long.clone();
        merged.merge(&long).expect("same shape");
        assert_eq!(merged.total().requests, 2 * long.total().requests);
        assert_eq!(merged.latency.count(), 2 * long.latency.count());

        let json = serde_json::to_string(&merged).expect("serializes");
        let back: SoakTally = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, merged);

        let mut other = SoakTally::new(Protocol::Http3, Shape::Churn, &[]);
        assert!(other.merge(&long).is_err());

        let report = SoakReport::new("embedded", Thresholds::default(), vec![long.clone(), other]);
        let text = serde_json::to_string(&report).expect("serializes");
        let read = SoakReport::parse(&text).expect("reads back");
        let whole = SoakReport::merge(&[read.clone(), read]).expect("same target");
        assert_eq!(whole.tallies.len(), 2);
        assert_eq!(whole.tallies[0].total().requests, 2 * long.total().requests);
        let elsewhere = SoakReport::new("nginx", Thresholds::default(), Vec::new());
        assert!(SoakReport::merge(&[report, elsewhere]).is_err());
    }

    #[test]
    fn violations_are_kept_up_to_a_bound() {
        let mut soak = tally();
        for _ in 0..100 {
            soak.record(
                asked(2, Entitlement::Uncovered, 0),
                &response(200, Some("charlie")),
            );
        }
        assert_eq!(soak.violations.len(), KEPT_VIOLATIONS);
        assert_eq!(soak.total().violations, 100);
    }
}
