//! The standard multi-tenant deployment that every suite assumes.
//!
//! Suites must run against any server, so they never name hosts. They name *roles* of one small
//! deployment, and a target maps each role onto a hostname: the embedded target and the PKI use
//! the standard `.test` names below, an operator's edge maps them onto its own names.
//!
//! | role           | standard name | tenant  | certificate                | client certificate |
//! |----------------|---------------|---------|----------------------------|--------------------|
//! | `primary`      | `a.test`      | alpha   | `shared` (a.test, b.test)  | no                 |
//! | `sibling`      | `b.test`      | bravo   | `shared` (a.test, b.test)  | no                 |
//! | `foreign`      | `c.test`      | charlie | `separate` (c.test)        | no                 |
//! | `wildcard`     | `t1.w.test`   | delta   | `wildcard` (*.w.test)      | no                 |
//! | `mtls`         | `t2.w.test`   | echo    | `wildcard` (*.w.test)      | required, client CA |
//! | `partner`      | `t3.w.test`   | foxtrot | `wildcard` (*.w.test)      | required, partner CA |
//! | `strict-tls`   | `t4.w.test`   | golf    | `wildcard` (*.w.test)      | no; TLS 1.3 only    |
//! | `unconfigured` | `x.w.test`    | (none)  | covered by `wildcard` only | —                  |
//! | `unknown`      | `d.test`      | (none)  | none                       | —                  |
//!
//! `primary` and `sibling` are legitimate coalescing across virtual hosts; `foreign` is a name the
//! primary's certificate does not cover; `wildcard` and `mtls` share a wildcard certificate while
//! only `mtls` requires a client certificate (the mTLS-bypass case); `partner` is a second mTLS
//! tenant under the same certificate that trusts another client CA, so that a certificate valid
//! for one mTLS tenant is seen not to open the other; `strict-tls` accepts TLS 1.3 only, a
//! per-name TLS policy that a connection made with TLS 1.2 for another name must not get past;
//! `unconfigured` is covered by a
//! certificate the target holds but served by no tenant, which is the case where servers fall back
//! to a default virtual host; `unknown` is neither served nor covered by any certificate of the
//! target, a name it must refuse on every connection (RFC 9110 §7.4), which default virtual hosts
//! answer all the same.
//!
//! Every tenant identifies itself in each response, so that a verdict can say *who* answered:
//! the response header [`TENANT_HEADER`] carries the tenant label, or the body contains
//! `tenant=<label>`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Response header through which a tenant names itself.
pub const TENANT_HEADER: &str = "x-misdirect-tenant";

/// Header through which the harness names each request, so that upstream records can be matched
/// with the exchanges that caused them.
pub const REQUEST_ID_HEADER: &str = "x-misdirect-request";

/// Paths under this prefix are what the mock upstreams let a shared cache store, with
/// [`STORABLE`], so that a caching gateway's key can be put to the test (RFC 9111 §2).
pub const CACHED_PATHS: &str = "/cached/";
/// The `Cache-Control` of a response a cache may store and reuse.
pub const STORABLE: &str = "public, max-age=60";

/// Whether a shared cache may store the answer to a request for `path` (the mock upstreams' rule).
pub fn storable(path: &str) -> bool {
    path.starts_with(CACHED_PATHS)
}

/// Paths under this prefix are refused with 421 by a mock upstream the first time it sees each
/// one, as a backend that finds the gateway's connection misdirected does, and served after
/// that: what a gateway does with a backend's 421 can then be seen (RFC 9110 §3.7, §15.5.20).
pub const REFUSED_ONCE_PATHS: &str = "/refused-once/";

/// Whether a mock upstream refuses the first request for `path`.
pub fn refused_once(path: &str) -> bool {
    path.starts_with(REFUSED_ONCE_PATHS)
}

/// The origin that the mock upstreams list in the ORIGIN frame they send on every HTTP/2
/// connection, and no one else does: on a client's connection it shows a frame that a gateway
/// forwarded, which an intermediary must not do (RFC 8336 §2.2). `.invalid` names nothing.
pub const UPSTREAM_ORIGIN: &str = "https://upstream-only.misdirect.invalid";

/// The path of a client scenario's fetch `index`, so that the origin's log tells fetches apart.
pub fn fetch_path(index: usize) -> String {
    format!("/fetch/{index}")
}

/// A role of the standard deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Primary,
    Sibling,
    Foreign,
    Wildcard,
    Mtls,
    Partner,
    StrictTls,
    Unconfigured,
    Unknown,
}

impl Role {
    pub const ALL: [Self; 9] = [
        Self::Primary,
        Self::Sibling,
        Self::Foreign,
        Self::Wildcard,
        Self::Mtls,
        Self::Partner,
        Self::StrictTls,
        Self::Unconfigured,
        Self::Unknown,
    ];

    /// The key used for this role in scenario files and on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Sibling => "sibling",
            Self::Foreign => "foreign",
            Self::Wildcard => "wildcard",
            Self::Mtls => "mtls",
            Self::Partner => "partner",
            Self::StrictTls => "strict-tls",
            Self::Unconfigured => "unconfigured",
            Self::Unknown => "unknown",
        }
    }

    /// The label the tenant serving this role puts in its responses; `None` for the role that no
    /// tenant serves.
    pub fn tenant(self) -> Option<&'static str> {
        match self {
            Self::Primary => Some("alpha"),
            Self::Sibling => Some("bravo"),
            Self::Foreign => Some("charlie"),
            Self::Wildcard => Some("delta"),
            Self::Mtls => Some("echo"),
            Self::Partner => Some("foxtrot"),
            Self::StrictTls => Some("golf"),
            Self::Unconfigured | Self::Unknown => None,
        }
    }

    /// The role whose tenant names itself `label`.
    pub fn from_tenant(label: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|role| role.tenant() == Some(label))
    }

    /// The hostname of this role in the standard deployment.
    pub fn standard_name(self) -> &'static str {
        match self {
            Self::Primary => "a.test",
            Self::Sibling => "b.test",
            Self::Foreign => "c.test",
            Self::Wildcard => "t1.w.test",
            Self::Mtls => "t2.w.test",
            Self::Partner => "t3.w.test",
            Self::StrictTls => "t4.w.test",
            Self::Unconfigured => "x.w.test",
            Self::Unknown => "d.test",
        }
    }

    /// Whether the tenant of this role accepts requests only on connections that presented a
    /// client certificate issued by its own client CA.
    pub fn requires_client_certificate(self) -> bool {
        matches!(self, Self::Mtls | Self::Partner)
    }

    /// Whether the tenant of this role accepts requests only on connections that negotiated
    /// TLS 1.3.
    pub fn requires_tls13(self) -> bool {
        self == Self::StrictTls
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A role key that names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}` (expected one of: {roles})", roles = role_keys())]
pub struct UnknownRole(pub String);

fn role_keys() -> String {
    Role::ALL.map(Role::key).join(", ")
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.key() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// A server certificate of the standard deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateId {
    Shared,
    Separate,
    Wildcard,
}

impl CertificateId {
    pub const ALL: [Self; 3] = [Self::Shared, Self::Separate, Self::Wildcard];

    /// File stem used when the certificate is written to disk.
    pub fn key(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Separate => "separate",
            Self::Wildcard => "wildcard",
        }
    }

    /// Subject alternative names (DNS) of this certificate.
    pub fn sans(self) -> &'static [&'static str] {
        match self {
            Self::Shared => &["a.test", "b.test"],
            Self::Separate => &["c.test"],
            Self::Wildcard => &["*.w.test"],
        }
    }

    /// The certificate a server presents for the given SNI: the one whose SANs cover it.
    pub fn for_server_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|cert| cert.sans().iter().any(|san| san_covers(san, name)))
    }
}

/// Role → hostname mapping of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    names: [String; 9],
    /// Roles the target does not play, each with the reason; scenarios that need one are SKIP.
    unmapped: Vec<(Role, String)>,
}

impl Deployment {
    /// The standard `.test` names, used by the embedded target and the generated PKI.
    pub fn standard() -> Self {
        Self {
            names: Role::ALL.map(|role| role.standard_name().to_owned()),
            unmapped: Vec::new(),
        }
    }

    pub fn name(&self, role: Role) -> &str {
        &self.names[role.index()]
    }

    /// Maps `role` onto `name` instead of its standard name.
    pub fn set_name(&mut self, role: Role, name: String) {
        self.names[role.index()] = name;
    }

    /// Marks `role` as one the target does not play, and why; the first reason given stays.
    pub fn unmap(&mut self, role: Role, reason: impl Into<String>) {
        if self.is_mapped(role) {
            self.unmapped.push((role, reason.into()));
        }
    }

    pub fn is_mapped(&self, role: Role) -> bool {
        self.unmapped_reason(role).is_none()
    }

    /// Why the target does not play `role`, if it does not.
    pub fn unmapped_reason(&self, role: Role) -> Option<&str> {
        self.unmapped
            .iter()
            .find(|(unmapped, _)| *unmapped == role)
            .map(|(_, reason)| reason.as_str())
    }

    /// The role whose hostname is `name` (ASCII case-insensitive, trailing dot ignored).
    pub fn role_of(&self, name: &str) -> Option<Role> {
        let name = normalize_host(name);
        Role::ALL
            .into_iter()
            .find(|role| normalize_host(self.name(*role)) == name)
    }
}

/// Lowercases a host and removes one trailing dot, the comparison form used for verdicts.
pub fn normalize_host(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// Whether a DNS SAN (possibly a `*.` wildcard for one left-most label) covers `host`, per
/// RFC 6125 as RFC 9110 §4.3.4 uses it: ASCII case-insensitive, wildcard matches exactly one label.
pub fn san_covers(san: &str, host: &str) -> bool {
    let san = normalize_host(san);
    let host = normalize_host(host);
    match san.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => san == host,
    }
}

/// Why an authority does not parse; the message names the authority.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    #[error("authority `{0}` carries userinfo")]
    Userinfo(String),
    #[error("authority `{0}` has an unclosed IPv6 literal")]
    UnclosedLiteral(String),
    #[error("authority `{0}` has no valid host")]
    NoHost(String),
    #[error("authority `{0}` has an invalid port")]
    InvalidPort(String),
    #[error("authority `{0}` has a port out of range")]
    PortOutOfRange(String),
}

/// Splits `host[:port]` (or `[v6]:port`). Userinfo, an empty host, characters outside a
/// hostname and ports that do not fit 16 bits are errors.
pub fn parse_authority(authority: &str) -> Result<(&str, Option<u16>), AuthorityError> {
    let owned = || authority.to_owned();
    if authority.contains('@') {
        return Err(AuthorityError::Userinfo(owned()));
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| AuthorityError::UnclosedLiteral(owned()))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    if !valid_host {
        return Err(AuthorityError::NoHost(owned()));
    }
    let port = port
        .map(|port| {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(AuthorityError::InvalidPort(owned()));
            }
            port.trim_start_matches('0')
                .parse::<u16>()
                .or_else(|_| {
                    if port.bytes().all(|b| b == b'0') {
                        Ok(0)
                    } else {
                        Err(())
                    }
                })
                .map_err(|()| AuthorityError::PortOutOfRange(owned()))
        })
        .transpose()?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_covers_one_label_only() {
        assert!(san_covers("*.w.test", "t1.w.test"));
        assert!(san_covers("*.w.test", "T2.W.TEST."));
        assert!(!san_covers("*.w.test", "w.test"));
        assert!(!san_covers("*.w.test", "a.t1.w.test"));
        assert!(san_covers("a.test", "A.test"));
        assert!(!san_covers("a.test", "b.test"));
    }

    #[test]
    fn certificates_are_chosen_by_coverage() {
        assert_eq!(
            CertificateId::for_server_name("b.test"),
            Some(CertificateId::Shared)
        );
        assert_eq!(
            CertificateId::for_server_name("x.w.test"),
            Some(CertificateId::Wildcard)
        );
        assert_eq!(CertificateId::for_server_name("x.test"), None);
    }

    #[test]
    fn roles_round_trip_and_reject_unknown_keys() {
        for role in Role::ALL {
            assert_eq!(role.key().parse::<Role>(), Ok(role));
        }
        let err = "tenant".parse::<Role>().unwrap_err();
        assert!(err.to_string().contains("primary, sibling"), "{err}");
    }

    #[test]
    fn role_lookup_normalizes() {
        let deployment = Deployment::standard();
        assert_eq!(deployment.role_of("A.TEST."), Some(Role::Primary));
        assert_eq!(deployment.role_of("nowhere.test"), None);
    }

    #[test]
    fn authorities_parse_strictly() {
        assert_eq!(parse_authority("a.test:0443"), Ok(("a.test", Some(443))));
        assert_eq!(parse_authority("[::1]:8443"), Ok(("::1", Some(8443))));
        assert!(parse_authority("evil.test@b.test").is_err());
        assert!(parse_authority("a.test:99999").is_err());
        assert!(parse_authority("a test").is_err());
        assert!(parse_authority(":443").is_err());
    }
}
