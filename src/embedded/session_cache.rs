//! The session-cache fault, [`Fault::ResumptionBypass`]: a view of the target's shared TLS
//! session cache that lets a session resume under another SNI, as servers whose session cache or
//! ticket keys are not bound to the virtual host do (the CVE-2025-23419 class).

use std::sync::Arc;

use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};

#[cfg(doc)]
use misdirect_core::fault::Fault;

/// The session cache seen through [`Fault::ResumptionBypass`]: every cached session is handed
/// out as if it had been established under the SNI of the connection asking for it, so rustls'
/// SNI check on resumption (RFC 6066 §3) never sees a mismatch. This emulates servers whose
/// session cache or ticket keys are not bound to the virtual host.
#[derive(Debug)]
pub(super) struct SniUnboundSessions {
    inner: Arc<ServerSessionMemoryCache>,
    sni: Option<String>,
}

impl SniUnboundSessions {
    pub(super) fn new(inner: Arc<ServerSessionMemoryCache>, sni: Option<String>) -> Self {
        Self { inner, sni }
    }

    /// A stored session begins with its SNI: `1, length, name` or `0` for none. This is rustls
    /// 0.23's private encoding of `ServerSessionValue`; should it change, the session no longer
    /// decodes, nothing resumes, and the `fault::resumption-bypass` trial of `cargo test` fails.
    fn rebind(&self, value: Vec<u8>) -> Vec<u8> {
        let rest = match value.first() {
            Some(0) => &value[1..],
            Some(1) => match value.get(1) {
                Some(&length) if value.len() >= 2 + usize::from(length) => {
                    &value[2 + usize::from(length)..]
                }
                _ => return value,
            },
            _ => return value,
        };
        let mut rebound = Vec::with_capacity(value.len() + 64);
        match self.sni.as_deref().filter(|sni| sni.len() <= 255) {
            Some(sni) => {
                rebound.push(1);
                rebound.push(u8::try_from(sni.len()).unwrap_or(u8::MAX));
                rebound.extend_from_slice(sni.as_bytes());
            }
            None => rebound.push(0),
        }
        rebound.extend_from_slice(rest);
        rebound
    }
}

impl StoresServerSessions for SniUnboundSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.inner.put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.get(key).map(|value| self.rebind(value))
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.take(key).map(|value| self.rebind(value))
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_rebound_to_the_current_sni() {
        let unbound = SniUnboundSessions {
            inner: ServerSessionMemoryCache::new(4),
            sni: Some("t2.w.test".into()),
        };
        let mut stored = vec![1, 9];
        stored.extend_from_slice(b"t1.w.test");
        stored.extend_from_slice(&[7, 7]);
        let mut expected = vec![1, 9];
        expected.extend_from_slice(b"t2.w.test");
        expected.extend_from_slice(&[7, 7]);
        assert_eq!(unbound.rebind(stored), expected);
    }
}
