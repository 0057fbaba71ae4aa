//! misdirect: a conformance harness for 421 (Misdirected Request) and HTTP connection reuse.
//!
//! One HTTP/2 connection can carry requests for many hostnames. A server may only answer for the
//! origins that the connection is valid for (RFC 9110 §7.4) and must otherwise refuse, normally
//! with 421 (RFC 9110 §15.5.20). misdirect reads YAML scenarios, drives HTTP/1.1 and HTTP/2
//! clients with independent control of SNI, ALPN, `:authority` and `Host`, and judges what the
//! target did against the requirement each scenario cites.
//!
//! The crate is a sans-IO core inside a thin async shell:
//!
//! - core (no sockets, files or clocks): [`deployment`], [`scenario`], [`observe`], [`check`],
//!   [`outcome`], [`report`], [`target::policy`], the comparison in [`baseline`];
//! - shell: [`pki`], [`client`], [`target`], [`runner`], [`bench`], [`cli`], [`harness`].
//!
//! `ARCHITECTURE.md` at the repository root has the map and the invariants.

pub mod baseline;
pub mod bench;
pub mod check;
pub mod cli;
pub mod client;
pub mod deployment;
pub mod h2wire;
pub mod h3wire;
pub mod harness;
pub mod observe;
pub mod outcome;
pub mod pki;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod target;
