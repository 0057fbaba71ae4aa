//! The scripts the embedded origin plays for a client under test. A client scenario names one
//! (`origin:`); the policy module decides what each refuses.

/// How the embedded target answers when it plays the origin for a client under test, on top of
/// its policy: the situations a client's 421 handling is tested in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OriginScript {
    /// The policy alone.
    #[default]
    Policy,
    /// 421 for every request whose authority is not the connection's SNI: coalescing refused.
    SniMismatch,
    /// 421 for the first request on every connection.
    FirstRequest,
    /// 421 for every request: a client that retries without bound loops.
    Always,
}

impl OriginScript {
    pub const ALL: [Self; 4] = [
        Self::Policy,
        Self::SniMismatch,
        Self::FirstRequest,
        Self::Always,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::SniMismatch => "sni-mismatch",
            Self::FirstRequest => "first-request",
            Self::Always => "always",
        }
    }
}
