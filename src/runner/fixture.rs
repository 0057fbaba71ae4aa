//! What a server case runs against, set up once per target kind: the embedded target started for
//! the case (with its own mock upstreams for a gateway scenario), the chaos target, or a server
//! reached over the network, launched from a profile or run by somebody else (with the run's
//! shared mock upstreams when it is a gateway routed to them). Client cases have their own fixture, the
//! scripted origin (`client.rs`).

use std::net::SocketAddr;

use tokio::sync::OnceCell;

use super::{CaseSetupError, Stop};
use crate::embedded::chaos::{Chaos, ChaosTarget};
use crate::embedded::upstream::{UpstreamLog, Upstreams};
use crate::embedded::{EmbeddedTarget, StartOptions};
use crate::pki::Pki;
use crate::under_test::Remote;
use misdirect_core::conclude::Inapplicable;
use misdirect_core::fault::Fault;
use misdirect_core::protocol::Protocol;

/// A server ready for one case; what it started stops when it is dropped.
pub(super) struct ServerFixture {
    pub(super) address: SocketAddr,
    /// The UDP port of its HTTP/3 endpoint, if it has one.
    pub(super) h3_port: Option<u16>,
    /// What reached the mock upstreams, for a gateway.
    pub(super) upstream_log: Option<UpstreamLog>,
    _embedded: Option<EmbeddedTarget>,
    _chaos: Option<ChaosTarget>,
    _upstreams: Option<Upstreams>,
}

impl ServerFixture {
    /// The embedded target, correct or with `fault`, on ephemeral ports, on TCP only unless the
    /// case speaks HTTP/3; in front of mock upstreams of its own when the scenario tests a
    /// gateway.
    pub(super) async fn embedded(
        pki: Option<&Pki>,
        fault: Option<Fault>,
        gateway: bool,
        protocol: Protocol,
    ) -> Result<Self, Stop> {
        let pki = pki.ok_or(Stop::Setup(CaseSetupError::NoPki))?;
        let upstreams = if gateway {
            Some(
                Upstreams::start(pki)
                    .await
                    .map_err(|error| Stop::Setup(CaseSetupError::Upstreams(error)))?,
            )
        } else {
            None
        };
        let tcp_only = protocol != Protocol::Http3;
        let options = StartOptions {
            upstreams: upstreams.as_ref().map(Upstreams::addresses),
            tcp_only,
            ..StartOptions::default()
        };
        let embedded = EmbeddedTarget::start_with(pki, fault, options)
            .await
            .map_err(|error| Stop::Setup(CaseSetupError::Target(error)))?;
        let address = embedded.address();
        Ok(Self {
            address,
            h3_port: (!tcp_only).then_some(address.port()),
            upstream_log: upstreams.as_ref().map(Upstreams::log),
            _embedded: Some(embedded),
            _chaos: None,
            _upstreams: upstreams,
        })
    }

    /// The chaos target with `chaos`; `no-alpn` is the reference target without ALPN. A gateway
    /// case against it gets no mock upstreams: nothing of the chaos target reaches them.
    pub(super) async fn chaos(pki: Option<&Pki>, chaos: Chaos) -> Result<Self, Stop> {
        let pki = pki.ok_or(Stop::Setup(CaseSetupError::NoPki))?;
        let setup = |error| Stop::Setup(CaseSetupError::Target(error));
        if let Some(options) = chaos.reference_options() {
            let embedded = EmbeddedTarget::start_with(pki, None, options)
                .await
                .map_err(setup)?;
            return Ok(Self {
                address: embedded.address(),
                h3_port: Some(embedded.address().port()),
                upstream_log: None,
                _embedded: Some(embedded),
                _chaos: None,
                _upstreams: None,
            });
        }
        let target = ChaosTarget::start(pki, chaos).await.map_err(setup)?;
        Ok(Self {
            address: target.address(),
            h3_port: target.h3_port(),
            upstream_log: None,
            _embedded: None,
            _chaos: Some(target),
            _upstreams: None,
        })
    }

    /// A server reached at its address. A gateway of yours proxies to the mock upstreams, which
    /// run once for the whole run (`shared`); a gateway scenario without them does not apply.
    pub(super) async fn remote(
        remote: &Remote,
        pki: Option<&Pki>,
        shared: &OnceCell<Upstreams>,
        gateway: bool,
    ) -> Result<Self, Stop> {
        let upstreams = match (remote.upstreams_port, pki) {
            (Some(first_port), Some(pki)) => Some(
                shared
                    .get_or_try_init(|| {
                        Upstreams::start_on(pki, first_port, !remote.upstreams_cleartext)
                    })
                    .await
                    .map_err(|error| Stop::Setup(CaseSetupError::Upstreams(error)))?,
            ),
            _ if gateway => return Err(Stop::at_start(Inapplicable::NoMockUpstreams)),
            _ => None,
        };
        Ok(Self {
            address: remote.address,
            h3_port: remote.h3_port,
            upstream_log: upstreams.map(Upstreams::log),
            _embedded: None,
            _chaos: None,
            _upstreams: None,
        })
    }
}
