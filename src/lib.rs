//! misdirect: a conformance harness for 421 (Misdirected Request) and HTTP connection reuse.
//!
//! One HTTP/2 connection can carry requests for many hostnames. A server may only answer for the
//! origins that the connection is valid for (RFC 9110 §7.4) and must otherwise refuse, normally
//! with 421 (RFC 9110 §15.5.20). misdirect reads YAML scenarios, drives HTTP/1.1 and HTTP/2
//! clients with independent control of SNI, ALPN, `:authority` and `Host`, and judges what the
//! target did against the requirement each scenario cites.
//!
//! This crate is the thin async shell around the sans-IO core, [`misdirect_core`] (scenarios,
//! checks, verdicts, reports, the reference policy, wire codecs): it generates the PKI
//! ([`pki`]), drives the clients ([`client`]), runs the embedded reference target
//! ([`embedded`]) and the gateways' mock upstreams ([`embedded::upstream`]), reaches, launches or runs
//! what is under test ([`under_test`]), carries out cases under their deadlines ([`runner`]),
//! and offers it all as a command line ([`cli`]), a benchmark ([`bench`](mod@bench)), load with
//! every response verified ([`soak`](mod@soak)), the audit of a live edge from its URL
//! ([`audit`](mod@audit)) and `cargo test` trials ([`harness`]).
//!
//! `ARCHITECTURE.md` at the repository root has the map and the invariants.

pub mod audit;
pub mod bench;
pub mod cli;
pub mod client;
pub mod embedded;
pub mod harness;
pub mod pki;
pub mod quic_endpoints;
pub mod runner;
pub mod soak;
pub mod under_test;
