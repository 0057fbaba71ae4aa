//! Checks of what a gateway under test passed to its backends, read from the mock upstreams'
//! log through the request ID the harness put on each request: a refused request reaches no
//! backend, a served one reaches its own tenant's, over a connection that names that tenant in
//! SNI, with the request's authority as its Host.

use super::{Exchanged, Judgement, family, host_of};
use crate::deployment::{Role, UPSTREAM_ORIGIN, normalize_host};

family! {
    /// What an expectation asserts about what reached the mock upstreams behind a gateway.
    GatewayCheck / RawGatewayCheck {
        /// The request reached the upstream of this role's tenant, and no other.
        ReachedUpstream(Role) = "reached_upstream",
        /// The request reached no upstream at all.
        ReachedNoUpstream = "reached_no_upstream",
        /// The answer was fetched from this role's tenant's upstream, whatever it said: the
        /// request reached it, where `reached_upstream` lets a gateway refuse on its own. A
        /// refusal the gateway answered without asking, as from a stored response, is unmet.
        FetchedFrom(Role) = "fetched_from",
        /// The connection to the upstream that carried the request named this role in SNI.
        UpstreamSni(Role) = "upstream_sni",
        /// The request reached its upstream with a Host naming this role (the port aside): a
        /// gateway passes the request's authority on (RFC 9113 §8.3.1).
        UpstreamHost(Role) = "upstream_host",
        /// No ORIGIN frame on the request's connection lists the origin that only the mock
        /// upstreams' ORIGIN frames list: the gateway did not pass its upstream's frame on
        /// (RFC 8336 §2.2). Not applicable unless the request reached its upstream over
        /// HTTP/2, where the upstream sends that frame.
        OriginFrameNotRelayed = "origin_frame_not_relayed",
    }
}

impl GatewayCheck {
    pub fn describe(&self) -> String {
        match self {
            Self::ReachedUpstream(role) => format!(
                "forwarded to the upstream of tenant {} only",
                role.tenant().unwrap_or("none")
            ),
            Self::ReachedNoUpstream => "forwarded to no upstream".to_owned(),
            Self::FetchedFrom(role) => format!(
                "fetched from the upstream of tenant {}, not answered from a store",
                role.tenant().unwrap_or("none")
            ),
            Self::UpstreamSni(role) => format!(
                "forwarded over an upstream connection whose SNI is {}",
                role.standard_name()
            ),
            Self::UpstreamHost(role) => format!(
                "forwarded with a Host naming {}, the request's authority",
                role.standard_name()
            ),
            Self::OriginFrameNotRelayed => {
                format!(
                    "no ORIGIN frame passed on from the upstream (none listing {UPSTREAM_ORIGIN})"
                )
            }
        }
    }

    pub fn judge(&self, exchanged: &Exchanged<'_>) -> Judgement {
        let Some(id) = exchanged.exchange.request_id.as_deref() else {
            return Judgement::Missing(
                "the request carried no request ID for the upstreams".to_owned(),
            );
        };
        let everything = &exchanged.observations.upstream_requests;
        let reached: Vec<_> = everything
            .iter()
            .filter(|request| request.request_id.as_deref() == Some(id))
            .collect();
        let upstreams = || {
            let names: Vec<&str> = reached
                .iter()
                .map(|request| request.upstream.as_str())
                .collect();
            format!("reached the upstream of {}", names.join(", "))
        };
        match self {
            // Only meaningful if something of this case reached the upstreams at all: otherwise
            // the gateway may not be routed to them, or strip the request ID.
            Self::ReachedNoUpstream | Self::FetchedFrom(_) if everything.is_empty() => {
                Judgement::Missing(
                    "no request of this case reached a mock upstream: is the gateway routed to them?"
                        .to_owned(),
                )
            }
            Self::ReachedNoUpstream if reached.is_empty() => Judgement::Met,
            Self::ReachedNoUpstream => exchanged.unmet_with(upstreams()),
            Self::FetchedFrom(_) if reached.is_empty() => exchanged.unmet_with(
                "answered by the gateway without asking any upstream, although other requests \
                 of this case reached one"
                    .to_owned(),
            ),
            // A gateway that refused the request itself forwarded nothing, which is no fault of
            // its forwarding (the case's control shows it forwards at all).
            Self::ReachedUpstream(_)
            | Self::UpstreamSni(_)
            | Self::UpstreamHost(_)
            | Self::OriginFrameNotRelayed
                if exchanged.refused && reached.is_empty() =>
            {
                Judgement::NotApplicable(
                    "the gateway refused the request; nothing to forward".to_owned(),
                )
            }
            Self::ReachedUpstream(_)
            | Self::UpstreamSni(_)
            | Self::UpstreamHost(_)
            | Self::OriginFrameNotRelayed
                if reached.is_empty() =>
            {
                Judgement::Missing(
                    "no mock upstream saw the request: is the gateway routed to them?".to_owned(),
                )
            }
            Self::ReachedUpstream(role) | Self::FetchedFrom(role) => {
                if reached
                    .iter()
                    .all(|request| Some(request.upstream.as_str()) == role.tenant())
                {
                    Judgement::Met
                } else {
                    exchanged.unmet_with(upstreams())
                }
            }
            Self::OriginFrameNotRelayed
                if !reached
                    .iter()
                    .any(|request| request.alpn.as_deref() == Some("h2")) =>
            {
                Judgement::NotApplicable(
                    "the gateway did not speak HTTP/2 to the upstream, which sends its ORIGIN \
                     frame over HTTP/2 only"
                        .to_owned(),
                )
            }
            Self::OriginFrameNotRelayed => {
                let relayed = exchanged
                    .observations
                    .connection(&exchanged.exchange.connection)
                    .is_some_and(|record| {
                        record
                            .origin_frames
                            .iter()
                            .any(|frame| frame.origins.iter().any(|origin| origin == UPSTREAM_ORIGIN))
                    });
                if relayed {
                    exchanged.unmet_with(format!(
                        "an ORIGIN frame on this connection lists {UPSTREAM_ORIGIN}, which only \
                         the upstream's frame listed"
                    ))
                } else {
                    Judgement::Met
                }
            }
            Self::UpstreamSni(_) if reached.iter().all(|request| !request.tls) => {
                Judgement::NotApplicable(
                    "the upstreams speak cleartext: there is no SNI".to_owned(),
                )
            }
            Self::UpstreamHost(role) => {
                let wanted = normalize_host(exchanged.deployment.name(*role));
                let hosts: Vec<&str> = reached
                    .iter()
                    .map(|request| request.host.as_deref().unwrap_or("(none)"))
                    .collect();
                if hosts.iter().all(|host| host_of(host) == wanted) {
                    Judgement::Met
                } else {
                    exchanged.unmet_with(format!("the upstream saw Host {}", hosts.join(", ")))
                }
            }
            Self::UpstreamSni(role) => {
                let wanted = exchanged.deployment.name(*role);
                if reached
                    .iter()
                    .all(|request| request.sni.as_deref() == Some(wanted))
                {
                    Judgement::Met
                } else {
                    let seen: Vec<&str> = reached
                        .iter()
                        .map(|request| request.sni.as_deref().unwrap_or("(none)"))
                        .collect();
                    exchanged.unmet_with(format!(
                        "the upstream connection had SNI {}",
                        seen.join(", ")
                    ))
                }
            }
        }
    }
}
