//! Checks of what the target answered a request: who served it, whether and how it refused, what
//! the connection's certificate covered and whether it resumed a session offered from elsewhere (RFC 9110 §7.4, §15.5.20; RFC 9113 §8.1.1, §8.3.1;
//! RFC 9114 §4.1.2; RFC 9111 for a stored 421).

use super::{
    Exchanged, Judgement, covered_by_certificate, family, host_of, named_tenant, served, unnamed,
};
use crate::deployment::{Deployment, Role, san_covers};
use crate::observe::{ConnectionResult, ExchangeOutcome};
use crate::protocol::Protocol;

/// HTTP/2 error code PROTOCOL_ERROR (RFC 9113 §7) and HTTP/3 H3_MESSAGE_ERROR (RFC 9114 §8.1):
/// the stream errors for a malformed request. The code spaces do not overlap.
const PROTOCOL_ERROR: u64 = 0x1;
const H3_MESSAGE_ERROR: u64 = 0x10e;

family! {
    /// What an expectation asserts about the target's answer to a request.
    ServerCheck / RawServerCheck {
        /// Served (2xx) by the tenant of this role.
        ServedBy(Role) = "served_by",
        /// The case's positive control: served (2xx) by the tenant of this role, on a connection
        /// like the one the case probes. It shows the target serves at all, so that a refusal
        /// elsewhere in the case means something; not served is ERROR (nothing could be
        /// tested), never FAIL, and being served alone never makes a case PASS.
        Control(Role) = "control",
        /// Served (2xx) by the tenant of this role on the named connection, which the target must
        /// therefore have kept open: a connection it closed before the request counts against it.
        StillServedBy(Role) = "still_served_by",
        /// If served at all, then by the tenant of this role; a refusal is fine, but an error page
        /// of another tenant (other than a 421) shows the request was routed to that tenant.
        TenantIfServed(Role) = "tenant_if_served",
        /// Not served (2xx) by the tenant of this role; a refusal, another tenant's answer or an
        /// empty one (every tenant names itself in what it serves) is fine.
        NotServedBy(Role) = "not_served_by",
        /// Not served: a 4xx/5xx status, a stream reset, a closed connection or a refused handshake.
        Refused = "refused",
        /// Refused unless the certificate presented on the connection covers the authority
        /// (RFC 9110 §7.4); not applicable where it does.
        UncoveredRefused = "uncovered_refused",
        /// The final status is one of these.
        Status(Vec<u16>) = "status",
        /// Treated as malformed: over HTTP/2 a RST_STREAM or GOAWAY with PROTOCOL_ERROR, or a 400;
        /// over HTTP/3 H3_MESSAGE_ERROR, alone or after a response; over HTTP/1.1 a 400.
        Malformed = "malformed",
        /// A response arrived and carries no explicit freshness (`max-age`, `s-maxage`, `public`,
        /// `Expires`).
        NotCacheable = "not_cacheable",
        /// The certificate presented on the request's connection covers the request's authority.
        CertificateCovers = "certificate_covers",
        /// The request's connection, which offered an earlier connection's TLS session under
        /// another SNI, did not resume it: the target ran a full handshake or refused it
        /// (RFC 6066 §3).
        FreshSession = "fresh_session",
    }
}

impl ServerCheck {
    pub fn describe(&self, deployment: &Deployment) -> String {
        match self {
            Self::ServedBy(role) => format!("2xx {}", served(*role, deployment)),
            Self::Control(role) => format!(
                "2xx {}, the control that shows the target serves on such a connection",
                served(*role, deployment)
            ),
            Self::StillServedBy(role) => {
                format!("2xx {} on the same connection", served(*role, deployment))
            }
            Self::TenantIfServed(role) => format!("refused, or {}", served(*role, deployment)),
            Self::NotServedBy(role) => format!("refused, or not {}", served(*role, deployment)),
            Self::Refused => {
                "refused (4xx/5xx, stream reset, closed connection or refused handshake)".to_owned()
            }
            Self::UncoveredRefused => {
                "refused unless the certificate presented covers the authority".to_owned()
            }
            Self::Status(codes) => {
                let codes: Vec<String> = codes.iter().map(u16::to_string).collect();
                format!("status {}", codes.join(" or "))
            }
            Self::Malformed => {
                "treated as malformed: stream error PROTOCOL_ERROR (h2, or a 400) or H3_MESSAGE_ERROR (h3)"
                    .to_owned()
            }
            Self::NotCacheable => {
                "no explicit freshness (max-age, s-maxage, public, Expires)".to_owned()
            }
            Self::CertificateCovers => {
                "a certificate presented on the connection that covers the authority".to_owned()
            }
            Self::FreshSession => {
                "a full handshake, not the resumption of the session offered from another name"
                    .to_owned()
            }
        }
    }

    pub fn judge(&self, exchanged: &Exchanged<'_>) -> Judgement {
        let refused = exchanged.refused;
        let outcome = exchanged.outcome();
        let exchange = exchanged.exchange;
        match self {
            Self::Refused if refused => Judgement::Met,
            Self::Refused => exchanged.unmet(),
            Self::UncoveredRefused => {
                let host = host_of(&exchange.authority);
                let connection = exchanged.observations.connection(&exchange.connection);
                let sans = match connection.map(|record| &record.result) {
                    Some(ConnectionResult::Established(established)) => &established.peer_sans,
                    // A refused handshake presented no certificate the request could ride on.
                    _ if refused => return Judgement::Met,
                    _ => {
                        return Judgement::Missing(
                            "no certificate was observed on the connection".to_owned(),
                        );
                    }
                };
                if let Some(covered) = covered_by_certificate(exchange, exchanged.observations) {
                    Judgement::NotApplicable(covered)
                } else if refused {
                    Judgement::Met
                } else {
                    Judgement::Unmet {
                        expected: format!(
                            "refused, because the certificate presented ({}) does not cover {host}",
                            sans.join(", ")
                        ),
                        observed: outcome.to_string(),
                    }
                }
            }
            Self::Status(codes) => match outcome {
                ExchangeOutcome::Response(response) if codes.contains(&response.status) => {
                    Judgement::Met
                }
                _ => exchanged.unmet(),
            },
            // HTTP/2: the stream error PROTOCOL_ERROR, or that error for the whole connection
            // (RFC 9113 §5.4.1), or a 400 (RFC 9113 §8.1.1 lets a response precede the reset).
            // HTTP/3: the stream error H3_MESSAGE_ERROR, alone or after a response (RFC 9114
            // §4.1.2); a 400 that ends cleanly is no stream error.
            Self::Malformed => match (exchanged.protocol, outcome) {
                (
                    Protocol::Http2,
                    ExchangeOutcome::StreamReset { code, .. }
                    | ExchangeOutcome::ConnectionError { code, .. },
                ) if *code == PROTOCOL_ERROR => Judgement::Met,
                (Protocol::Http3, ExchangeOutcome::StreamReset { code, .. })
                    if *code == H3_MESSAGE_ERROR =>
                {
                    Judgement::Met
                }
                (Protocol::Http3, ExchangeOutcome::Response(response))
                    if response.reset_after == Some(H3_MESSAGE_ERROR) =>
                {
                    Judgement::Met
                }
                (Protocol::Http1 | Protocol::Http2, ExchangeOutcome::Response(response))
                    if response.status == 400 =>
                {
                    Judgement::Met
                }
                _ => exchanged.unmet(),
            },
            Self::Control(role) => match outcome {
                ExchangeOutcome::Response(response) if !refused && response.status < 300 => {
                    match named_tenant(response, *role, Judgement::Missing(String::new())) {
                        Judgement::Met => Judgement::Met,
                        _ => control_failed(outcome),
                    }
                }
                _ => control_failed(outcome),
            },
            Self::ServedBy(role) | Self::StillServedBy(role) => match outcome {
                ExchangeOutcome::Response(response) if !refused && response.status < 300 => {
                    named_tenant(response, *role, exchanged.unmet())
                }
                _ => exchanged.unmet(),
            },
            Self::NotServedBy(role) => match outcome {
                ExchangeOutcome::Response(response) if !refused => match &response.tenant {
                    // Every tenant names itself in what it serves: an empty answer is none of
                    // theirs.
                    None if response.body_excerpt.is_empty() => Judgement::Met,
                    None => unnamed(response),
                    Some(tenant) if role.tenant() == Some(tenant.as_str()) => exchanged.unmet(),
                    Some(_) => Judgement::Met,
                },
                _ => Judgement::Met,
            },
            Self::TenantIfServed(role) => match outcome {
                ExchangeOutcome::Response(response) if !refused => {
                    named_tenant(response, *role, exchanged.unmet())
                }
                // An error page of another tenant shows the request was routed to it; a 421
                // names whichever virtual host the server generates it in, which proves nothing.
                ExchangeOutcome::Response(response)
                    if response.status != 421
                        && response
                            .tenant
                            .as_deref()
                            .is_some_and(|tenant| Some(tenant) != role.tenant()) =>
                {
                    exchanged.unmet()
                }
                _ => Judgement::Met,
            },
            Self::CertificateCovers => {
                let host = host_of(&exchange.authority);
                match exchanged
                    .observations
                    .connection(&exchange.connection)
                    .map(|record| &record.result)
                {
                    Some(ConnectionResult::Established(established)) => {
                        if established
                            .peer_sans
                            .iter()
                            .any(|san| san_covers(san, &host))
                        {
                            Judgement::Met
                        } else {
                            exchanged.unmet_with(format!(
                                "a certificate for {}",
                                established.peer_sans.join(", ")
                            ))
                        }
                    }
                    _ => Judgement::Missing(
                        "no certificate was observed on the connection".to_owned(),
                    ),
                }
            }
            Self::FreshSession => match exchanged
                .observations
                .connection(&exchange.connection)
                .map(|record| (record.resumption_offered, &record.result))
            {
                Some((true, ConnectionResult::Established(established))) if established.resumed => {
                    exchanged.unmet_with(format!(
                        "the session offered was resumed ({})",
                        established.tls_version
                    ))
                }
                Some((
                    true,
                    ConnectionResult::Established(_) | ConnectionResult::Refused { .. },
                )) => Judgement::Met,
                Some((false, _)) => Judgement::Missing(
                    "no earlier session was offered on the connection".to_owned(),
                ),
                _ => Judgement::Missing("no handshake was observed on the connection".to_owned()),
            },
            Self::NotCacheable => match outcome {
                ExchangeOutcome::Response(response) => match response.explicit_freshness() {
                    None => Judgement::Met,
                    Some(freshness) => {
                        exchanged.unmet_with(format!("{} with {freshness}", response.status))
                    }
                },
                _ => Judgement::NotApplicable(format!(
                    "no response that a cache could store ({outcome})"
                )),
            },
        }
    }
}

/// A control that was not served: the case has nothing to compare its refusals with.
fn control_failed(outcome: &ExchangeOutcome) -> Judgement {
    Judgement::Missing(format!(
        "the control was not served ({outcome}): a target that does not serve its own tenant proves nothing by refusing"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{ConnectionRecord, Exchange, Observations, Response};

    fn response(status: u16) -> ExchangeOutcome {
        ExchangeOutcome::Response(Response::named(status, None))
    }

    /// Whether `Malformed` is met by `outcome` over `protocol`.
    fn malformed(protocol: Protocol, outcome: ExchangeOutcome) -> bool {
        let observations = Observations {
            connections: vec![ConnectionRecord::main_with(&["a.test"])],
            ..Observations::default()
        };
        let exchange = Exchange {
            host: Some("c.test".into()),
            ..Exchange::on_main(0, "a.test:443", outcome)
        };
        let deployment = Deployment::standard();
        let exchanged = Exchanged {
            refused: exchange.outcome.refused().unwrap_or(false),
            exchange: &exchange,
            protocol,
            deployment: &deployment,
            observations: &observations,
            expected: ServerCheck::Malformed.describe(&deployment),
        };
        matches!(ServerCheck::Malformed.judge(&exchanged), Judgement::Met)
    }

    #[test]
    fn malformed_means_the_protocols_own_stream_error() {
        let reset = |code| ExchangeOutcome::StreamReset {
            code,
            name: String::new(),
        };
        assert!(malformed(Protocol::Http2, reset(PROTOCOL_ERROR)));
        assert!(malformed(Protocol::Http2, response(400)));
        assert!(malformed(Protocol::Http1, response(400)));
        assert!(malformed(Protocol::Http3, reset(H3_MESSAGE_ERROR)));
        assert!(!malformed(Protocol::Http3, reset(PROTOCOL_ERROR)));
        let goaway = |code| ExchangeOutcome::ConnectionError {
            code,
            name: String::new(),
        };
        // RFC 9113 §5.4.1: the stream error may be raised to a connection error.
        assert!(malformed(Protocol::Http2, goaway(PROTOCOL_ERROR)));
        assert!(!malformed(Protocol::Http2, goaway(0x2)));
        assert!(!malformed(Protocol::Http2, reset(H3_MESSAGE_ERROR)));
        assert!(!malformed(Protocol::Http3, response(400)));
        let mut then_reset = response(400);
        if let ExchangeOutcome::Response(response) = &mut then_reset {
            response.reset_after = Some(H3_MESSAGE_ERROR);
        }
        assert!(malformed(Protocol::Http3, then_reset));
    }
}
