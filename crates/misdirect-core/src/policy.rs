//! The embedded target's request decisions: which tenant serves a request, or why it is refused.
//!
//! Pure and synchronous, so the reference behaviour and each fault can be read and tested in one
//! place; the HTTP/1.1 and HTTP/2 shells in `embedded` only translate a [`Reply`] onto the wire.
//!
//! The correct behaviour, in order:
//! 1. The target URI's authority comes from `:authority` (HTTP/2) or the absolute-form target
//!    (HTTP/1.1), else from `Host` (RFC 9113 §8.3.1, RFC 9112 §3.2.2). HTTP/1.1 needs exactly one
//!    `Host` (RFC 9112 §3.2, else 400); an HTTP/2 `Host` naming another entity than `:authority`
//!    makes the request malformed (stream error PROTOCOL_ERROR), as does a second `:authority`.
//!    The scheme must be `https`: the target has not opted into `http` over TLS (RFC 8164), so
//!    an `http` URI names an origin it does not serve on this connection (RFC 9114 §3.1.2,
//!    RFC 7838 §9.5).
//! 2. Host and port are normalised (lowercase, trailing dot dropped, port without leading zeros,
//!    443 when absent; RFC 9110 §4.3.1) and the port must be the one the connection arrived on.
//! 3. The certificate presented on the connection must cover the host (RFC 9110 §7.4).
//! 4. A tenant must be configured for the host.
//! 5. A tenant that requires a client certificate is only served on connections that presented
//!    one its own client CA issued (RFC 9110 §7.4, RFC 6066 §3): a certificate that opens one
//!    mTLS tenant does not open another.
//! 6. A tenant that accepts only TLS 1.3 is only served on connections that negotiated it: a
//!    policy a server chose by the SNI name must be checked against the name in the request
//!    (RFC 6066 §3).
//!
//!    An authority no URI can hold (empty, or with a `/`, `?`, `#` or space) is a 400.
//!
//!    Every refusal in 2–6 is a 421 without freshness information that leaves the connection open.

use crate::deployment::{
    AuthorityError, CertificateId, Deployment, Role, normalize_host, parse_authority, san_covers,
};
use crate::fault::Fault;
use crate::lenient;
use crate::origin_script::OriginScript;
use crate::protocol::Protocol;

/// What the target knows about a connection once its TLS handshake is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFacts {
    pub sni: Option<String>,
    /// The certificate presented, chosen by SNI.
    pub certificate: CertificateId,
    /// The mTLS tenant whose client CA issued the certificate the client presented (in this
    /// handshake or the resumed one); `None` when it presented none.
    pub client_certificate: Option<Role>,
    /// Whether the handshake ran under the configuration for a tenant that requires client
    /// certificates (true even when a resumed session skipped the client authentication).
    pub handshake_demanded_client_certificate: bool,
    /// Whether the handshake negotiated TLS 1.3 (QUIC always does).
    pub tls13: bool,
    /// The port the connection arrived on.
    pub local_port: u16,
    /// The connection's number, in the order the target accepted them.
    pub connection: u64,
}

/// What the target remembers across the requests of one connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectionMemory {
    first_tenant: Option<Role>,
    requests: usize,
}

impl ConnectionMemory {
    /// Counts a request; returns how many came before it on this connection.
    pub fn count_request(&mut self) -> usize {
        self.requests += 1;
        self.requests - 1
    }
}

impl OriginScript {
    /// Why the script refuses this request, if it does; `earlier` requests came before it on
    /// the connection.
    pub fn refuses(
        self,
        connection: &ConnectionFacts,
        request: &RequestHead,
        earlier: usize,
        policy: &Policy,
    ) -> Option<String> {
        match self {
            Self::Policy => None,
            Self::Always => Some("every request is refused".to_owned()),
            Self::FirstRequest if earlier == 0 => {
                Some("the first request on a connection is refused".to_owned())
            }
            Self::FirstRequest => None,
            Self::SniMismatch => {
                let host = policy.requested_host(request)?;
                let sni = connection.sni.as_deref().map(normalize_host);
                (sni.as_deref() != Some(host.as_str()))
                    .then(|| format!("only the SNI name is served here, not {host}"))
            }
        }
    }
}

/// The parts of a request the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub protocol: Protocol,
    pub method: String,
    /// `:scheme`, or the scheme of an absolute-form target (HTTP/1.1); `None` in origin form,
    /// where the connection implies `https`.
    pub scheme: Option<String>,
    /// `:authority` (HTTP/2) or the authority of an absolute-form target (HTTP/1.1).
    pub authority: Option<String>,
    /// Every `Host` header field value.
    pub host: Vec<String>,
    /// The last `:authority` of a request that carries more than one (HTTP/2, HTTP/3), which
    /// makes it malformed (RFC 9113 §8.3, RFC 9114 §4.3).
    pub repeated_authority: Option<String>,
}

/// How the target answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Respond(Answer),
    /// Reset the stream with PROTOCOL_ERROR (HTTP/2); HTTP/1.1 answers 400 and closes instead.
    Malformed(String),
}

/// A response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The tenant that answers and names itself; `None` for refusals.
    pub tenant: Option<Role>,
    pub body: String,
    pub cache_control: Option<&'static str>,
    /// Close the connection after this response.
    pub close: bool,
    pub content_type: &'static str,
}

impl Answer {
    /// Content from `role`'s tenant, naming itself and the authority it answered: the same
    /// on whichever connection it travels, as a correct origin's content is (an audit compares
    /// a name's content on a shared connection with a fresh one's).
    pub fn served(role: Role, authority: &str) -> Self {
        Self {
            status: 200,
            tenant: Some(role),
            body: format!(
                "tenant={} authority={authority}\n",
                role.tenant().unwrap_or("none"),
            ),
            cache_control: None,
            close: false,
            content_type: "text/plain",
        }
    }

    /// A refusal that names no tenant and carries no cache directives.
    pub fn refusal(status: u16, body: String, close: bool) -> Self {
        Self {
            status,
            tenant: None,
            body,
            cache_control: None,
            close,
            content_type: "text/plain",
        }
    }
}

/// The decision procedure of the embedded target, with at most one fault.
#[derive(Debug, Clone)]
pub struct Policy {
    fault: Option<Fault>,
    deployment: Deployment,
}

impl Policy {
    pub fn new(fault: Option<Fault>) -> Self {
        Self {
            fault,
            deployment: Deployment::standard(),
        }
    }

    fn has(&self, fault: Fault) -> bool {
        self.fault == Some(fault)
    }

    /// The tenant a request names, if any, before any check: where a gateway that forwards
    /// first would send it.
    pub fn requested_role(&self, request: &RequestHead) -> Option<Role> {
        self.tenant_role(&self.requested_host(request)?)
    }

    /// The normalised host a request names, before any check.
    pub fn requested_host(&self, request: &RequestHead) -> Option<String> {
        let authority = self.target_authority(request).ok()?;
        let (host, _) = parse_authority(&authority).ok()?;
        Some(normalize_host(host))
    }

    /// The origins the target lists in the ORIGIN frame of an HTTP/2 connection (RFC 8336): the
    /// tenants it serves on this connection, that is those its certificate covers, less a
    /// tenant that requires a client certificate the connection lacks.
    pub fn advertised_origins(&self, connection: &ConnectionFacts) -> Vec<String> {
        Role::ALL
            .into_iter()
            .filter(|role| role.tenant().is_some())
            .filter(|role| {
                let name = self.deployment.name(*role);
                let covered = connection
                    .certificate
                    .sans()
                    .iter()
                    .any(|san| san_covers(san, name));
                covered || (self.has(Fault::OriginGrantsUncovered) && *role == Role::Foreign)
            })
            .filter(|role| {
                !role.requires_client_certificate() || connection.client_certificate == Some(*role)
            })
            .filter(|role| !role.requires_tls13() || connection.tls13)
            .map(|role| match connection.local_port {
                443 => format!("https://{}", self.deployment.name(role)),
                port => format!("https://{}:{port}", self.deployment.name(role)),
            })
            .collect()
    }

    pub fn decide(
        &self,
        connection: &ConnectionFacts,
        memory: &mut ConnectionMemory,
        request: &RequestHead,
    ) -> Reply {
        match self.route(connection, memory, request) {
            Ok((role, authority)) => Reply::Respond(Answer::served(role, &authority)),
            Err(Refusal::BadRequest(reason)) => Reply::Respond(Answer::refusal(
                400,
                format!("bad request: {reason}\n"),
                false,
            )),
            Err(Refusal::Malformed(reason)) => Reply::Malformed(reason),
            Err(Refusal::Misdirected(reason)) => {
                let status = if self.has(Fault::Status404) {
                    404
                } else if self.has(Fault::Status400) {
                    400
                } else {
                    421
                };
                let mut answer = Answer::refusal(
                    status,
                    format!("misdirected request: {reason}\n"),
                    self.has(Fault::CloseAfter421),
                );
                answer.cache_control = self
                    .has(Fault::Cacheable421)
                    .then_some("public, max-age=3600");
                Reply::Respond(answer)
            }
        }
    }

    fn route(
        &self,
        connection: &ConnectionFacts,
        memory: &mut ConnectionMemory,
        request: &RequestHead,
    ) -> Result<(Role, String), Refusal> {
        // A request without any authority goes to the default tenant, unchecked.
        let names_authority = request
            .authority
            .iter()
            .chain(&request.host)
            .any(|authority| !authority.is_empty());
        if self.has(Fault::MissingHostDefault) && !names_authority {
            memory.first_tenant.get_or_insert(Role::Primary);
            return Ok((Role::Primary, String::new()));
        }
        if let Some(scheme) = request.scheme.as_deref()
            && !scheme.eq_ignore_ascii_case("https")
            && !self.has(Fault::IgnoresScheme)
        {
            return Err(Refusal::Misdirected(format!(
                "`{scheme}` URIs are not served over TLS here"
            )));
        }
        if let Some(repeated) = &request.repeated_authority
            && !self.has(Fault::SplitAuthority)
        {
            return Err(Refusal::Malformed(format!(
                "a second :authority `{repeated}`"
            )));
        }
        // Checks that read one field while routing reads another approve one name and serve
        // another: the first of two :authority fields and the last, or Host and the target URI.
        let (written, routed_host) = match (
            &request.authority,
            &request.repeated_authority,
            request.host.first(),
        ) {
            (Some(first), Some(last), _) => {
                let routed = parse_authority(last)
                    .map_or_else(|_| last.clone(), |(host, _)| normalize_host(host));
                (first.clone(), Some(routed))
            }
            (Some(target), _, Some(host)) if self.has(Fault::ChecksHostRoutesAuthority) => {
                let routed = parse_authority(target)
                    .map(|(host, _)| normalize_host(host))
                    .map_err(|error| Refusal::BadRequest(error.to_string()))?;
                (host.clone(), Some(routed))
            }
            _ => (self.target_authority(request)?, None),
        };
        let written = if self.has(Fault::AuthorityPrefixMatch) {
            lenient::up_to_delimiter(&written).to_owned()
        } else {
            written
        };
        // A parser that reads the userinfo as the host checks one name and routes by another.
        let (authority, routed_host) = match written.split_once('@') {
            Some((userinfo, rest)) if self.has(Fault::UserinfoConfusion) => {
                let port = parse_authority(rest).ok().and_then(|(_, port)| port);
                let routed = parse_authority(rest)
                    .map(|(host, _)| normalize_host(host))
                    .map_err(|error| Refusal::BadRequest(error.to_string()))?;
                let checked = port.map_or(userinfo.to_owned(), |port| format!("{userinfo}:{port}"));
                (checked, Some(routed))
            }
            // The mirror image: the host is checked, the userinfo chooses the tenant.
            Some((userinfo, rest)) if self.has(Fault::RoutesByUserinfo) => {
                (rest.to_owned(), Some(normalize_host(userinfo)))
            }
            _ => (written, routed_host),
        };
        let (raw_host, port) = match parse_authority(&authority) {
            Err(AuthorityError::PortOutOfRange(_)) if self.has(Fault::PortWraps) => {
                wrapped_port(&authority).ok_or_else(|| {
                    Refusal::BadRequest(format!("authority `{authority}` has no port"))
                })?
            }
            parsed => parsed.map_err(|error| Refusal::BadRequest(error.to_string()))?,
        };
        let host = normalize_host(raw_host);
        let port = port.unwrap_or(443);
        let unchecked_method = !matches!(request.method.as_str(), "GET" | "HEAD");
        let skips_checks = (self.has(Fault::NoSniBypass) && connection.sni.is_none())
            || (self.has(Fault::ChecksGetOnly) && unchecked_method);
        let checked = !skips_checks;
        if self.has(Fault::OriginAdvertisesRefused)
            && connection.sni.as_deref().map(normalize_host) != Some(host.clone())
        {
            return Err(Refusal::Misdirected(format!(
                "only the SNI name is served, not {host}"
            )));
        }
        // The default virtual host answers every name nothing else claims, before any check.
        if self.has(Fault::DefaultVirtualHost)
            && self.tenant_role(&host).is_none()
            && CertificateId::for_server_name(&host).is_none()
        {
            memory.first_tenant.get_or_insert(Role::Primary);
            return Ok((Role::Primary, authority));
        }
        if checked {
            self.check_connection_context(
                connection,
                &authority,
                raw_host,
                &host,
                port,
                request.protocol,
            )?;
        }
        let by_authority = self.tenant_role(routed_host.as_deref().unwrap_or(&host));
        let routed = if self.has(Fault::RouteBySni) {
            connection
                .sni
                .as_deref()
                .and_then(|sni| self.tenant_role(sni))
                .or(by_authority)
        } else {
            by_authority
        };
        let routed = match memory.first_tenant {
            Some(first) if self.has(Fault::StickyRouting) => Some(first),
            _ => routed,
        };
        let routed = match routed {
            Some(role) => role,
            None if self.has(Fault::DefaultTenant) => Role::Primary,
            None => {
                return Err(Refusal::Misdirected(format!(
                    "no tenant is configured for {host}"
                )));
            }
        };
        memory.first_tenant.get_or_insert(routed);
        if checked {
            self.check_client_certificate(connection, raw_host, &host)?;
            self.check_tls_version(connection, routed, &host)?;
        }
        Ok((routed, authority))
    }

    /// Step 6: a tenant that accepts only TLS 1.3 only on connections that negotiated it.
    fn check_tls_version(
        &self,
        connection: &ConnectionFacts,
        routed: Role,
        host: &str,
    ) -> Result<(), Refusal> {
        if routed.requires_tls13()
            && !connection.tls13
            && !self.has(Fault::TlsVersionInHandshakeOnly)
        {
            Err(Refusal::Misdirected(format!(
                "{host} accepts TLS 1.3 only, and this connection negotiated TLS 1.2"
            )))
        } else {
            Ok(())
        }
    }

    /// Step 1: the authority that names the target URI.
    fn target_authority(&self, request: &RequestHead) -> Result<String, Refusal> {
        let trusts_host = self.has(Fault::TrustsHostHeader);
        match request.protocol {
            Protocol::Http1 => {
                let host = match request.host.as_slice() {
                    [host] => host,
                    [first, ..] if self.has(Fault::FirstHostWins) => first,
                    _ => {
                        return Err(Refusal::BadRequest(format!(
                            "an HTTP/1.1 request carries exactly one Host header, not {}",
                            request.host.len()
                        )));
                    }
                };
                Ok(match (&request.authority, trusts_host) {
                    (Some(authority), false) => authority.clone(),
                    _ => host.clone(),
                })
            }
            Protocol::Http2 | Protocol::Http3 => {
                if request.host.len() > 1 {
                    return Err(Refusal::Malformed("more than one Host header".to_owned()));
                }
                // HTTP/2 compares the entities after normalisation (RFC 9113 §8.3.1); HTTP/3
                // requires the same value (RFC 9114 §4.3.1).
                let agree = |authority: &str, host: &str| match request.protocol {
                    Protocol::Http3 => authority == host,
                    _ if self.has(Fault::ComparesHostAsText) => authority == host,
                    _ => same_entity(authority, host),
                };
                match (&request.authority, request.host.first()) {
                    (Some(_), Some(host)) if trusts_host => Ok(host.clone()),
                    (Some(authority), Some(host))
                        if request.protocol == Protocol::Http3
                            && self.has(Fault::H3Mismatch421)
                            && !agree(authority, host) =>
                    {
                        Err(Refusal::Misdirected(format!(
                            "Host `{host}` differs from :authority `{authority}`"
                        )))
                    }
                    (Some(authority), Some(host))
                        if !self.has(Fault::AcceptsMismatchedHost) && !agree(authority, host) =>
                    {
                        Err(Refusal::Malformed(format!(
                            "Host `{host}` names another entity than :authority `{authority}`"
                        )))
                    }
                    (Some(authority), _) => Ok(authority.clone()),
                    (None, Some(host)) => Ok(host.clone()),
                    (None, None) => Err(Refusal::Malformed("no :authority and no Host".to_owned())),
                }
            }
        }
    }

    /// Steps 2 and 3: the request must fit the port and certificate of its connection.
    fn check_connection_context(
        &self,
        connection: &ConnectionFacts,
        authority: &str,
        raw_host: &str,
        host: &str,
        port: u16,
        protocol: Protocol,
    ) -> Result<(), Refusal> {
        if self.has(Fault::StrictPort) && Some(authority.to_ascii_lowercase()) != connection.sni {
            return Err(Refusal::Misdirected(format!(
                "authority `{authority}` differs from the SNI"
            )));
        }
        if self.has(Fault::PortAsText)
            && let Some((_, written)) = authority.rsplit_once(':')
            && written != port.to_string()
        {
            return Err(Refusal::Misdirected(format!(
                "port `{written}` is not written as {port}"
            )));
        }
        if port != connection.local_port && !self.has(Fault::IgnoresPort) {
            return Err(Refusal::Misdirected(format!(
                "port {port} is not the port this connection arrived on ({})",
                connection.local_port
            )));
        }
        let skips_coverage = self.has(Fault::NoCertificateCheck)
            || (protocol == Protocol::Http3 && self.has(Fault::H3NoCertificateCheck))
            || (protocol != Protocol::Http1
                && self.has(Fault::OriginGrantsUncovered)
                && self.deployment.role_of(host) == Some(Role::Foreign));
        if skips_coverage {
            return Ok(());
        }
        let sans = connection.certificate.sans();
        let covered = if self.has(Fault::CaseSensitiveMatch) {
            let exact = raw_host.strip_suffix('.').unwrap_or(raw_host);
            sans.iter()
                .any(|san| san_covers(san, exact) && (san.starts_with('*') || *san == exact))
        } else {
            sans.iter().any(|san| san_covers(san, host))
        };
        if covered {
            Ok(())
        } else {
            Err(Refusal::Misdirected(format!(
                "the certificate of this connection ({}) does not cover {host}",
                sans.join(", ")
            )))
        }
    }

    /// Step 5: a tenant that requires a client certificate only on connections that have one.
    fn check_client_certificate(
        &self,
        connection: &ConnectionFacts,
        raw_host: &str,
        host: &str,
    ) -> Result<(), Refusal> {
        if self.has(Fault::MtlsCoalescingBypass) {
            return Ok(());
        }
        let policy_name = if self.has(Fault::CaseSensitivePolicy) {
            raw_host.strip_suffix('.').unwrap_or(raw_host).to_owned()
        } else if self.has(Fault::TrailingDot) {
            raw_host.to_ascii_lowercase()
        } else {
            host.to_owned()
        };
        let Some(tenant) = Role::ALL.into_iter().find(|role| {
            role.requires_client_certificate() && self.deployment.name(*role) == policy_name
        }) else {
            return Ok(());
        };
        if self.has(Fault::ResumptionBypass) && connection.handshake_demanded_client_certificate {
            return Ok(());
        }
        match connection.client_certificate {
            Some(issuer) if issuer == tenant || self.has(Fault::ClientCaShared) => Ok(()),
            Some(issuer) => Err(Refusal::Misdirected(format!(
                "{host} accepts client certificates of its own CA only, and this connection's \
                 was issued by the CA of {}",
                self.deployment.name(issuer)
            ))),
            None => Err(Refusal::Misdirected(format!(
                "{host} requires a client certificate and this connection presented none"
            ))),
        }
    }

    /// The role served for a host, if a tenant is configured for it.
    fn tenant_role(&self, host: &str) -> Option<Role> {
        self.deployment
            .role_of(host)
            .filter(|role| role.tenant().is_some())
    }
}

enum Refusal {
    BadRequest(String),
    Malformed(String),
    Misdirected(String),
}

/// The host and the port of `authority` read modulo 65536, as a parser that keeps only 16 bits
/// reads it (the `port-wraps` fault).
fn wrapped_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = authority.rsplit_once(':')?;
    let port: u64 = port.parse().ok()?;
    Some((host, u16::try_from(port % 65_536).ok()))
}

/// Whether two authorities name the same entity after scheme-based normalisation for `https`
/// (RFC 9113 §8.3.1): case, trailing dot and the default port do not matter.
fn same_entity(left: &str, right: &str) -> bool {
    match (parse_authority(left), parse_authority(right)) {
        (Ok((left_host, left_port)), Ok((right_host, right_port))) => {
            normalize_host(left_host) == normalize_host(right_host)
                && left_port.unwrap_or(443) == right_port.unwrap_or(443)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: u16 = 4433;

    fn connection(sni: Option<&str>, client_certificate: Option<Role>) -> ConnectionFacts {
        ConnectionFacts {
            sni: sni.map(str::to_owned),
            certificate: sni
                .and_then(CertificateId::for_server_name)
                .unwrap_or(CertificateId::Shared),
            client_certificate,
            handshake_demanded_client_certificate: matches!(sni, Some("t2.w.test" | "t3.w.test")),
            tls13: true,
            local_port: PORT,
            connection: 0,
        }
    }

    fn h2(authority: &str) -> RequestHead {
        RequestHead {
            protocol: Protocol::Http2,
            method: "GET".into(),
            scheme: Some("https".into()),
            authority: Some(authority.into()),
            host: Vec::new(),
            repeated_authority: None,
        }
    }

    fn decide(
        fault: Option<Fault>,
        connection: &ConnectionFacts,
        request: &RequestHead,
    ) -> (u16, Option<Role>) {
        match Policy::new(fault).decide(connection, &mut ConnectionMemory::default(), request) {
            Reply::Respond(answer) => (answer.status, answer.tenant),
            Reply::Malformed(_) => (0, None),
        }
    }

    #[test]
    fn reference_serves_covered_and_refuses_uncovered() {
        let a = connection(Some("a.test"), None);
        assert_eq!(
            decide(None, &a, &h2("a.test:4433")),
            (200, Some(Role::Primary))
        );
        assert_eq!(
            decide(None, &a, &h2("b.test:4433")),
            (200, Some(Role::Sibling))
        );
        assert_eq!(
            decide(None, &a, &h2("B.TEST.:04433")),
            (200, Some(Role::Sibling))
        );
        assert_eq!(decide(None, &a, &h2("c.test:4433")), (421, None));
        assert_eq!(decide(None, &a, &h2("a.test:4434")), (421, None));
        assert_eq!(decide(None, &a, &h2("a.test")), (421, None));
    }

    #[test]
    fn reference_enforces_client_certificates_per_request() {
        let open = connection(Some("t1.w.test"), None);
        assert_eq!(decide(None, &open, &h2("t2.w.test:4433")), (421, None));
        assert_eq!(decide(None, &open, &h2("T2.W.TEST.:4433")), (421, None));
        let resumed = connection(Some("t2.w.test"), None);
        assert_eq!(decide(None, &resumed, &h2("t2.w.test:4433")), (421, None));
        let authenticated = connection(Some("t2.w.test"), Some(Role::Mtls));
        assert_eq!(
            decide(None, &authenticated, &h2("t2.w.test:4433")),
            (200, Some(Role::Mtls))
        );
        assert_eq!(
            decide(None, &authenticated, &h2("t1.w.test:4433")),
            (200, Some(Role::Wildcard))
        );
        // The other mTLS tenant trusts another CA: this certificate does not open it.
        assert_eq!(
            decide(None, &authenticated, &h2("t3.w.test:4433")),
            (421, None)
        );
        let partner = connection(Some("t3.w.test"), Some(Role::Partner));
        assert_eq!(
            decide(None, &partner, &h2("t3.w.test:4433")),
            (200, Some(Role::Partner))
        );
        assert_eq!(decide(None, &partner, &h2("t2.w.test:4433")), (421, None));
    }

    #[test]
    fn reference_serves_the_tls13_tenant_on_tls13_connections_only() {
        let modern = connection(Some("t1.w.test"), None);
        assert_eq!(
            decide(None, &modern, &h2("t4.w.test:4433")),
            (200, Some(Role::StrictTls))
        );
        let legacy = ConnectionFacts {
            tls13: false,
            ..modern
        };
        assert_eq!(decide(None, &legacy, &h2("t4.w.test:4433")), (421, None));
        assert_eq!(
            decide(None, &legacy, &h2("t1.w.test:4433")),
            (200, Some(Role::Wildcard))
        );
        assert_eq!(
            decide(
                Some(Fault::TlsVersionInHandshakeOnly),
                &legacy,
                &h2("t4.w.test:4433")
            ),
            (200, Some(Role::StrictTls))
        );
    }

    #[test]
    fn faults_change_exactly_their_decision() {
        let open = connection(Some("t1.w.test"), None);
        let upper = h2("T2.W.TEST:4433");
        assert_eq!(
            decide(Some(Fault::CaseSensitivePolicy), &open, &upper),
            (200, Some(Role::Mtls))
        );
        let dotted = h2("t2.w.test.:4433");
        assert_eq!(
            decide(Some(Fault::TrailingDot), &open, &dotted),
            (200, Some(Role::Mtls))
        );
        let other_ca = connection(Some("t3.w.test"), Some(Role::Mtls));
        assert_eq!(
            decide(
                Some(Fault::ClientCaShared),
                &other_ca,
                &h2("t3.w.test:4433")
            ),
            (200, Some(Role::Partner))
        );
        assert_eq!(
            decide(Some(Fault::ClientCaShared), &open, &h2("t3.w.test:4433")),
            (421, None)
        );
        let resumed = connection(Some("t2.w.test"), None);
        assert_eq!(
            decide(
                Some(Fault::ResumptionBypass),
                &resumed,
                &h2("t2.w.test:4433")
            ),
            (200, Some(Role::Mtls))
        );
        let a = connection(Some("a.test"), None);
        assert_eq!(
            decide(Some(Fault::RouteBySni), &a, &h2("b.test:4433")),
            (200, Some(Role::Primary))
        );
        assert_eq!(
            decide(Some(Fault::Status404), &a, &h2("c.test:4433")),
            (404, None)
        );
        assert_eq!(
            decide(Some(Fault::CaseSensitiveMatch), &a, &h2("A.TEST:4433")),
            (421, None)
        );
        assert_eq!(
            decide(Some(Fault::StrictPort), &a, &h2("a.test:4433")),
            (421, None)
        );
        assert_eq!(
            decide(Some(Fault::PortAsText), &a, &h2("a.test:04433")),
            (421, None)
        );
        assert_eq!(
            decide(Some(Fault::PortAsText), &a, &h2("a.test:4433")),
            (200, Some(Role::Primary))
        );
        // A port beyond 16 bits is an error, unless the parser wraps it around.
        assert_eq!(decide(None, &a, &h2("a.test:69969")), (400, None));
        assert_eq!(
            decide(Some(Fault::PortWraps), &a, &h2("a.test:69969")),
            (200, Some(Role::Primary))
        );
        // Userinfo is an error; the confused parser checks a.test and routes to c.test.
        assert_eq!(decide(None, &a, &h2("a.test@c.test:4433")), (400, None));
        assert_eq!(
            decide(
                Some(Fault::UserinfoConfusion),
                &a,
                &h2("a.test@c.test:4433")
            ),
            (200, Some(Role::Foreign))
        );
        assert_eq!(
            decide(Some(Fault::UserinfoConfusion), &a, &h2("c.test:4433")),
            (421, None)
        );
        assert_eq!(
            decide(Some(Fault::RoutesByUserinfo), &a, &h2("c.test@a.test:4433")),
            (200, Some(Role::Foreign))
        );
        assert_eq!(
            decide(Some(Fault::RoutesByUserinfo), &a, &h2("a.test@c.test:4433")),
            (421, None)
        );
        // The default virtual host takes the name nobody serves or covers, and nothing else.
        assert_eq!(decide(None, &a, &h2("d.test:4433")), (421, None));
        assert_eq!(
            decide(Some(Fault::DefaultVirtualHost), &a, &h2("d.test:4433")),
            (200, Some(Role::Primary))
        );
        for other in ["c.test:4433", "x.w.test:4433"] {
            assert_eq!(
                decide(Some(Fault::DefaultVirtualHost), &a, &h2(other)),
                (421, None),
                "{other}"
            );
        }
    }

    #[test]
    fn host_and_authority_disagreement_is_malformed_in_h2() {
        let a = connection(Some("a.test"), None);
        let mut request = h2("a.test:4433");
        request.host = vec!["b.test:4433".into()];
        assert_eq!(decide(None, &a, &request), (0, None));
        request.host = vec!["A.TEST:4433".into()];
        assert_eq!(decide(None, &a, &request), (200, Some(Role::Primary)));
        // Checking Host and routing by :authority approves a.test and serves c.test.
        let mut foreign = h2("c.test:4433");
        foreign.host = vec!["a.test:4433".into()];
        assert_eq!(decide(None, &a, &foreign), (0, None));
        assert_eq!(
            decide(Some(Fault::ChecksHostRoutesAuthority), &a, &foreign),
            (200, Some(Role::Foreign))
        );
    }

    #[test]
    fn absolute_form_wins_over_host_in_h1() {
        let a = connection(Some("a.test"), None);
        let request = RequestHead {
            protocol: Protocol::Http1,
            method: "GET".into(),
            scheme: Some("https".into()),
            authority: Some("c.test:4433".into()),
            host: vec!["a.test:4433".into()],
            repeated_authority: None,
        };
        assert_eq!(decide(None, &a, &request), (421, None));
        assert_eq!(
            decide(Some(Fault::TrustsHostHeader), &a, &request),
            (200, Some(Role::Primary))
        );
        let missing = RequestHead {
            host: Vec::new(),
            authority: None,
            ..request
        };
        assert_eq!(decide(None, &a, &missing), (400, None));
    }

    #[test]
    fn an_http_uri_is_refused_over_tls() {
        let a = connection(Some("a.test"), None);
        let request = RequestHead {
            scheme: Some("http".into()),
            ..h2("a.test:4433")
        };
        assert_eq!(decide(None, &a, &request), (421, None));
        assert_eq!(
            decide(Some(Fault::IgnoresScheme), &a, &request),
            (200, Some(Role::Primary))
        );
        let origin_form = RequestHead {
            protocol: Protocol::Http1,
            scheme: None,
            authority: None,
            host: vec!["a.test:4433".into()],
            ..request
        };
        assert_eq!(decide(None, &a, &origin_form), (200, Some(Role::Primary)));
    }

    #[test]
    fn an_empty_or_delimited_authority_is_a_bad_request() {
        let a = connection(Some("a.test"), None);
        for authority in ["", "a.test:4433/x", "a.test:4433#", "a.test:4433?"] {
            assert_eq!(decide(None, &a, &h2(authority)), (400, None), "{authority}");
        }
        assert_eq!(
            decide(Some(Fault::MissingHostDefault), &a, &h2("")),
            (200, Some(Role::Primary))
        );
        assert_eq!(
            decide(Some(Fault::AuthorityPrefixMatch), &a, &h2("a.test:4433/x")),
            (200, Some(Role::Primary))
        );
        assert_eq!(
            decide(Some(Fault::AuthorityPrefixMatch), &a, &h2("c.test:4433#")),
            (421, None)
        );
    }

    #[test]
    fn a_second_authority_is_malformed() {
        let a = connection(Some("a.test"), None);
        let twice = RequestHead {
            repeated_authority: Some("c.test:4433".into()),
            ..h2("a.test:4433")
        };
        assert_eq!(decide(None, &a, &twice), (0, None));
        assert_eq!(
            decide(Some(Fault::SplitAuthority), &a, &twice),
            (200, Some(Role::Foreign))
        );
    }

    #[test]
    fn a_host_naming_the_same_entity_is_not_malformed() {
        let a = connection(Some("a.test"), None);
        let request = RequestHead {
            host: vec!["A.TEST:4433".into()],
            ..h2("a.test:4433")
        };
        assert_eq!(decide(None, &a, &request), (200, Some(Role::Primary)));
        assert_eq!(
            decide(Some(Fault::ComparesHostAsText), &a, &request),
            (0, None)
        );
    }
}
