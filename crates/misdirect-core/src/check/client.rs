//! Checks of a client under test, judged from what reached the origin the embedded target plays
//! (its log of every request with connection, SNI, certificate and status): that it coalesces
//! only where the certificate and the ORIGIN frames allow (RFC 9110 §4.3.3, RFC 8336 §2.3), and
//! that it retries a 421 on a new connection, with its body, a bounded number of times (RFC 9110
//! §15.5.20).

use super::{Judgement, family, host_of};
use crate::deployment::{Role, fetch_path, normalize_host, san_covers};
use crate::observe::{CommandOutcome, ServedRequest};
use crate::protocol::Protocol;

family! {
    /// What must hold of what the origin saw of a client under test.
    ClientCheck / RawClientCheck {
        /// Every request arrived on a connection whose certificate covers its authority.
        CoalescedOnlyCovered = "coalesced_only_covered",
        /// Every fetch refused with 421 came again on another connection whose SNI names its host.
        RetriedOnNewConnection = "retried_on_new_connection",
        /// No fetch refused with 421 came again on the connection that refused it.
        NotRetriedOnSameConnection = "not_retried_on_same_connection",
        /// No fetch arrived more often than this.
        AtMostRequests(u32) = "at_most_requests",
        /// Every repetition of a fetch carried the same body as the first.
        BodyReplayed = "body_replayed",
        /// No request arrived on a connection whose Origin Set (its SNI name plus the scripted
        /// ORIGIN frame) lacks its origin.
        CoalescedOnlyInOriginSet = "coalesced_only_in_origin_set",
        /// All fetches of the same origin arrived on one connection: the client kept using it.
        ConnectionReused = "connection_reused",
        /// After a 421, no later fetch of the same origin arrived on the connection that
        /// refused it: the client remembered that the connection is not for that origin.
        AvoidsRefusingConnection = "avoids_refusing_connection",
        /// Every request named its origin: a `Host` field over HTTP/1.1, `:authority` or `Host`
        /// over HTTP/2 and HTTP/3.
        NamesItsOrigin = "names_its_origin",
        /// No request carried a `Host` field naming another authority than its `:authority`.
        HostAgreesWithAuthority = "host_agrees_with_authority",
        /// Every HTTP/1.1 request asked for the host its connection's SNI named.
        Http1ConnectionPerHost = "http1_connection_per_host",
    }
}

/// What a client case did: the scenario's fetches and scripted ORIGIN frame, the protocol the
/// case is about, and every request the origin served.
pub struct ClientRun<'a> {
    /// The role each fetch is for, in order.
    pub fetches: &'a [Role],
    /// The roles the origin's scripted ORIGIN frame listed, if it sent one.
    pub origin_frame: Option<&'a [Role]>,
    pub protocol: Protocol,
    pub served: &'a [ServedRequest],
    /// How the client's command ended, when it was one: said when nothing arrived.
    pub command: Option<&'a CommandOutcome>,
}

impl ClientCheck {
    /// What a client expectation asks for, in words.
    pub fn describe(&self) -> String {
        match self {
            Self::CoalescedOnlyCovered => {
                "every request on a connection whose certificate covers its origin".to_owned()
            }
            Self::RetriedOnNewConnection => {
                "after a 421, the request again on a new connection with the origin's SNI"
                    .to_owned()
            }
            Self::NotRetriedOnSameConnection => {
                "after a 421, never the request again on the connection that refused it".to_owned()
            }
            Self::AtMostRequests(limit) => format!("no request sent more than {limit} times"),
            Self::BodyReplayed => "a repeated request carries the same body".to_owned(),
            Self::CoalescedOnlyInOriginSet => {
                "no request on a connection whose ORIGIN frames leave its origin out".to_owned()
            }
            Self::ConnectionReused => "one connection for all fetches of an origin".to_owned(),
            Self::AvoidsRefusingConnection => {
                "after a 421, later fetches of that origin on other connections".to_owned()
            }
            Self::NamesItsOrigin => {
                "every request names its origin (Host, or :authority over HTTP/2 and HTTP/3)"
                    .to_owned()
            }
            Self::HostAgreesWithAuthority => {
                "no Host field that differs from the request's :authority".to_owned()
            }
            Self::Http1ConnectionPerHost => {
                "every HTTP/1.1 request on a connection opened for its host".to_owned()
            }
        }
    }

    /// Judges what the origin saw of the client under test in one case.
    pub fn judge(&self, plan: &ClientRun<'_>) -> Judgement {
        let check = self;
        let (protocol, served) = (plan.protocol, plan.served);
        if served.is_empty() {
            let how = plan
                .command
                .map_or(String::new(), |command| format!(": {command}"));
            return Judgement::Missing(format!(
                "the client under test sent no request to the origin{how}"
            ));
        }
        // A command client chooses its own protocol; a case is about the one it names.
        if served.iter().all(|request| request.protocol != protocol) {
            return Judgement::NotApplicable(format!(
                "the client under test spoke {}, not {protocol}",
                served[0].protocol
            ));
        }
        let expected = check.describe();
        let unmet = |observed: String| Judgement::Unmet {
            expected: expected.clone(),
            observed,
        };
        let of_fetch = |index: usize| -> Vec<&ServedRequest> {
            let path = fetch_path(index);
            served
                .iter()
                .filter(|request| request.path == path)
                .collect()
        };
        // (fetch, position among its requests) of every 421.
        let refusals: Vec<(usize, usize)> = (0..plan.fetches.len())
            .flat_map(|index| {
                of_fetch(index)
                    .iter()
                    .enumerate()
                    .filter(|(_, request)| request.status == 421)
                    .map(move |(position, _)| (index, position))
                    .collect::<Vec<_>>()
            })
            .collect();
        match check {
            Self::CoalescedOnlyCovered
            | Self::CoalescedOnlyInOriginSet
            | Self::NamesItsOrigin
            | Self::HostAgreesWithAuthority
            | Self::Http1ConnectionPerHost
                if (0..plan.fetches.len()).any(|index| of_fetch(index).is_empty()) =>
            {
                Judgement::Missing(
                    "the client did not send every fetch: what it would have sent for the rest is unknown".to_owned(),
                )
            }
            Self::CoalescedOnlyCovered => {
                let stray: Vec<String> = served
                    .iter()
                    .filter(|request| {
                        let host = requested_host(request);
                        !request.certificate.iter().any(|san| san_covers(san, &host))
                    })
                    .map(|request| {
                        format!(
                            "{} on connection {} (certificate {})",
                            request.authority.as_deref().unwrap_or("?"),
                            request.connection,
                            request.certificate.join(", ")
                        )
                    })
                    .collect();
                if stray.is_empty() {
                    Judgement::Met
                } else {
                    unmet(format!("sent {}", stray.join("; ")))
                }
            }
            Self::RetriedOnNewConnection
            | Self::NotRetriedOnSameConnection
            | Self::AvoidsRefusingConnection
                if refusals.is_empty() =>
            {
                Judgement::NotApplicable("the origin refused no request with 421".to_owned())
            }
            Self::RetriedOnNewConnection => {
                // The first refusal of each fetch is what a retry answers; an origin that refuses
                // the retry too is another matter (see at_most_requests).
                let missing: Vec<String> = (0..plan.fetches.len())
                    .filter_map(|index| {
                        let requests = of_fetch(index);
                        let position = requests.iter().position(|request| request.status == 421)?;
                        let refused = requests[position];
                        let host = fetch_host(plan, index);
                        let retried = requests[position + 1..].iter().any(|later| {
                            later.connection != refused.connection && later.sni.as_deref() == Some(host)
                        });
                        (!retried).then(|| fetch_path(index))
                    })
                    .collect();
                if missing.is_empty() {
                    Judgement::Met
                } else {
                    unmet(format!(
                        "no retry on a new connection with the origin's SNI for {}",
                        missing.join(", ")
                    ))
                }
            }
            Self::NotRetriedOnSameConnection => {
                let repeated: Vec<String> = refusals
                    .iter()
                    .filter(|(index, position)| {
                        let requests = of_fetch(*index);
                        let refused = requests[*position];
                        requests[position + 1..]
                            .iter()
                            .any(|later| later.connection == refused.connection)
                    })
                    .map(|(index, _)| fetch_path(*index))
                    .collect();
                if repeated.is_empty() {
                    Judgement::Met
                } else {
                    unmet(format!(
                        "sent {} again on the connection that refused it",
                        repeated.join(", ")
                    ))
                }
            }
            Self::AvoidsRefusingConnection => {
                // Each 421, then every fetch after the refused one for the same origin.
                let returned: Vec<String> = refusals
                    .iter()
                    .flat_map(|(index, position)| {
                        let refused = of_fetch(*index)[*position];
                        let host = refused.authority.as_deref().map(host_of);
                        (index + 1..plan.fetches.len())
                            .filter(move |later| {
                                of_fetch(*later).iter().any(|request| {
                                    request.connection == refused.connection
                                        && request.authority.as_deref().map(host_of) == host
                                })
                            })
                            .map(fetch_path)
                            .collect::<Vec<_>>()
                    })
                    .collect();
                if returned.is_empty() {
                    Judgement::Met
                } else {
                    unmet(format!(
                        "sent {} on a connection that had refused its origin with 421",
                        returned.join(", ")
                    ))
                }
            }
            Self::AtMostRequests(limit) => {
                let excess: Vec<String> = (0..plan.fetches.len())
                    .filter(|index| of_fetch(*index).len() > *limit as usize)
                    .map(|index| format!("{} {} times", fetch_path(index), of_fetch(index).len()))
                    .collect();
                if excess.is_empty() {
                    Judgement::Met
                } else {
                    unmet(format!("sent {}", excess.join(", ")))
                }
            }
            Self::CoalescedOnlyInOriginSet => {
                let Some(listed) = plan.origin_frame else {
                    return Judgement::NotApplicable(
                        "the origin sent no scripted ORIGIN frame".to_owned(),
                    );
                };
                let outside: Vec<String> = served
                    .iter()
                    .filter(|request| {
                        let host = requested_host(request);
                        let initial = request.sni.as_deref().map(normalize_host);
                        initial.as_deref() != Some(host.as_str())
                            && !listed.iter().any(|role| role.standard_name() == host)
                    })
                    .map(|request| {
                        format!(
                            "{} on connection {} (SNI {})",
                            request.authority.as_deref().unwrap_or("?"),
                            request.connection,
                            request.sni.as_deref().unwrap_or("(none)")
                        )
                    })
                    .collect();
                if outside.is_empty() {
                    Judgement::Met
                } else {
                    unmet(format!(
                        "sent {} outside its Origin Set",
                        outside.join("; ")
                    ))
                }
            }
            Self::ConnectionReused if (0..plan.fetches.len()).any(|index| of_fetch(index).is_empty()) => {
                Judgement::Missing("the client did not send every fetch".to_owned())
            }
            Self::ConnectionReused => {
                let split: Vec<String> = plan
                    .fetches
                    .iter()
                    .map(|role| role.standard_name())
                    .filter(|host| {
                        let mut connections: Vec<u64> = (0..plan.fetches.len())
                            .filter(|index| fetch_host(plan, *index) == *host)
                            .flat_map(|index| of_fetch(index).into_iter().map(|request| request.connection))
                            .collect();
                        connections.sort_unstable();
                        connections.dedup();
                        connections.len() > 1
                    })
                    .map(str::to_owned)
                    .collect();
                if split.is_empty() {
                    Judgement::Met
                } else {
                    unmet(format!("opened more than one connection for {}", split.join(", ")))
                }
            }
            Self::NamesItsOrigin => {
                let nameless: Vec<String> = served
                    .iter()
                    .filter(|request| request.protocol == protocol)
                    .filter(|request| {
                        let pseudo = protocol != Protocol::Http1 && request.authority.is_some();
                        !pseudo && request.host.is_empty()
                    })
                    .map(|request| {
                        format!(
                            "{} {} on connection {} named no origin",
                            request.method, request.path, request.connection
                        )
                    })
                    .collect();
                if nameless.is_empty() {
                    Judgement::Met
                } else {
                    unmet(nameless.join("; "))
                }
            }
            Self::HostAgreesWithAuthority => {
                let contradicting: Vec<String> = served
                    .iter()
                    .filter(|request| request.protocol == protocol)
                    .filter_map(|request| {
                        let authority = request.authority.as_deref()?;
                        let other = request
                            .host
                            .iter()
                            .find(|host| !host.eq_ignore_ascii_case(authority))?;
                        Some(format!(
                            "{} {} with :authority {authority} carried Host {other}",
                            request.method, request.path
                        ))
                    })
                    .collect();
                if contradicting.is_empty() {
                    Judgement::Met
                } else {
                    unmet(contradicting.join("; "))
                }
            }
            Self::Http1ConnectionPerHost => {
                let strays: Vec<String> = served
                    .iter()
                    .filter(|request| request.protocol == Protocol::Http1)
                    .filter(|request| {
                        request.sni.as_deref().map(normalize_host) != Some(requested_host(request))
                    })
                    .map(|request| {
                        format!(
                            "{} {} for {} on connection {} (SNI {})",
                            request.method,
                            request.path,
                            requested_host(request),
                            request.connection,
                            request.sni.as_deref().unwrap_or("none")
                        )
                    })
                    .collect();
                if strays.is_empty() {
                    Judgement::Met
                } else {
                    unmet(strays.join("; "))
                }
            }
            Self::BodyReplayed => {
                let repeated: Vec<usize> = (0..plan.fetches.len())
                    .filter(|index| of_fetch(*index).len() > 1)
                    .collect();
                if repeated.is_empty() {
                    return Judgement::NotApplicable("the client repeated no request".to_owned());
                }
                let altered: Vec<String> = repeated
                    .iter()
                    .filter(|index| {
                        let requests = of_fetch(**index);
                        requests
                            .iter()
                            .any(|request| request.body != requests[0].body)
                    })
                    .map(|index| fetch_path(*index))
                    .collect();
                if altered.is_empty() {
                    Judgement::Met
                } else {
                    unmet(format!(
                        "a repetition of {} carried another body",
                        altered.join(", ")
                    ))
                }
            }
        }
    }
}

/// The host a served request asked for, normalised; empty when it named none.
fn requested_host(request: &ServedRequest) -> String {
    request
        .authority
        .as_deref()
        .or(request.host.first().map(String::as_str))
        .map(host_of)
        .unwrap_or_default()
}

fn fetch_host(plan: &ClientRun<'_>, index: usize) -> &'static str {
    plan.fetches[index].standard_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A case that fetched the primary's, then (with a body) the sibling's origin, over h2.
    fn run(served: &[ServedRequest]) -> ClientRun<'_> {
        ClientRun {
            fetches: &[Role::Primary, Role::Sibling],
            origin_frame: None,
            protocol: Protocol::Http2,
            served,
            command: None,
        }
    }

    #[test]
    fn clients_are_judged_from_what_the_origin_saw() {
        let served =
            |connection, sni: &str, host: &str, fetch, body: &[u8], status| ServedRequest {
                connection,
                sni: Some(sni.into()),
                certificate: vec!["a.test".into(), "b.test".into()],
                method: "GET".into(),
                authority: Some(format!("{host}:4433")),
                host: Vec::new(),
                path: fetch_path(fetch),
                body: body.to_vec(),
                status,
                protocol: Protocol::Http2,
            };
        let good = vec![
            served(0, "a.test", "a.test", 0, b"", 200),
            served(0, "a.test", "b.test", 1, b"x", 421),
            served(1, "b.test", "b.test", 1, b"x", 200),
        ];
        let met = |check: ClientCheck, log: &[ServedRequest]| {
            matches!(check.judge(&run(log)), Judgement::Met)
        };
        assert!(met(ClientCheck::CoalescedOnlyCovered, &good));
        assert!(met(ClientCheck::RetriedOnNewConnection, &good));
        assert!(met(ClientCheck::NotRetriedOnSameConnection, &good));
        assert!(met(ClientCheck::AtMostRequests(2), &good));
        assert!(met(ClientCheck::BodyReplayed, &good));
        let same_connection = vec![
            good[0].clone(),
            good[1].clone(),
            served(0, "a.test", "b.test", 1, b"", 200),
        ];
        assert!(!met(
            ClientCheck::NotRetriedOnSameConnection,
            &same_connection
        ));
        assert!(!met(ClientCheck::RetriedOnNewConnection, &same_connection));
        assert!(!met(ClientCheck::BodyReplayed, &same_connection));
        assert!(!met(ClientCheck::AtMostRequests(1), &good));
        let mut uncovered = good.clone();
        uncovered[0].authority = Some("c.test:4433".into());
        assert!(!met(ClientCheck::CoalescedOnlyCovered, &uncovered));
        assert!(matches!(
            ClientCheck::CoalescedOnlyCovered.judge(&run(&[])),
            Judgement::Missing(_)
        ));
        assert!(met(ClientCheck::NamesItsOrigin, &good));
        assert!(met(ClientCheck::HostAgreesWithAuthority, &good));
        let mut nameless = good.clone();
        nameless[1].authority = None;
        assert!(!met(ClientCheck::NamesItsOrigin, &nameless));
        nameless[1].host = vec!["b.test:4433".into()];
        assert!(met(ClientCheck::NamesItsOrigin, &nameless));
        let mut stale = good.clone();
        stale[1].host = vec!["A.test:4433".into(), "b.test:4433".into()];
        assert!(!met(ClientCheck::HostAgreesWithAuthority, &stale));
        stale[1].host = vec!["B.TEST:4433".into()];
        assert!(met(ClientCheck::HostAgreesWithAuthority, &stale));
        // Over HTTP/1.1, the sibling's request on the primary's connection strays.
        let http1: Vec<ServedRequest> = good
            .iter()
            .map(|request| ServedRequest {
                protocol: Protocol::Http1,
                ..request.clone()
            })
            .collect();
        let over_http1 = ClientRun {
            protocol: Protocol::Http1,
            ..run(&http1)
        };
        assert!(!matches!(
            ClientCheck::Http1ConnectionPerHost.judge(&over_http1),
            Judgement::Met
        ));
        assert!(matches!(
            ClientCheck::Http1ConnectionPerHost.judge(&ClientRun {
                served: &http1[..1],
                fetches: &[Role::Primary],
                ..over_http1
            }),
            Judgement::Met
        ));
    }
}
