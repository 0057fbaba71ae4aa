//! The embedded target's gateway mode: it proxies each request its policy serves to the
//! tenant's mock upstream with the harness's own client, as a reverse proxy in front of
//! per-tenant backends does; what it passes on is a [`Forward`]. Like a caching reverse proxy, it
//! keeps what an upstream lets a shared cache store and answers later requests for the same
//! target from it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use super::IDLE;
use crate::client::tls::{ConnectionTickets, Credentials, TicketJar};
use crate::client::{self, ConnectRequest, Connection, WireRequest};
use misdirect_core::deployment::{REQUEST_ID_HEADER, Role, STORABLE};
#[cfg(doc)]
use misdirect_core::fault::Fault;
use misdirect_core::observe::ExchangeOutcome;
use misdirect_core::policy::{Answer, RequestHead};
use misdirect_core::protocol::Protocol;
use misdirect_core::wire;

/// What a gateway passes on of a request besides its head.
pub(super) struct Forward {
    pub(super) path: String,
    pub(super) request_id: Option<String>,
    pub(super) body: Bytes,
}

impl Forward {
    /// From an HTTP/2 or HTTP/3 request head and its body.
    pub(super) fn from_parts(request: &http::Request<()>, body: Vec<u8>) -> Self {
        Self {
            path: request
                .uri()
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |path| path.as_str().to_owned()),
            request_id: request
                .headers()
                .get(REQUEST_ID_HEADER)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
            body: Bytes::from(body),
        }
    }

    pub(super) fn from_h1(request: &wire::h1::Request) -> Self {
        let path = match wire::h1::absolute_form(&request.target) {
            Some((_, authority)) => request
                .target
                .split_once(authority)
                .map_or_else(|| "/".to_owned(), |(_, rest)| rest.to_owned()),
            None => request.target.clone(),
        };
        Self {
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path
            },
            request_id: request.header(REQUEST_ID_HEADER),
            body: Bytes::from(request.body.clone()),
        }
    }
}

/// The embedded target's gateway side: it proxies each request it serves to its tenant's upstream
/// over HTTPS, as a reverse proxy in front of per-tenant backends does.
pub(super) struct Gateway {
    pub(super) upstreams: Vec<(Role, SocketAddr)>,
    pub(super) credentials: Credentials,
    /// Whether the upstream connection carries the tenant's name in SNI.
    pub(super) send_sni: bool,
    /// The shared cache: stored answers by key, as a caching reverse proxy keeps them.
    pub(super) cache: Mutex<HashMap<String, Answer>>,
    /// Key the cache by the path alone ([`Fault::CacheKeyWithoutHost`]), not by tenant and path.
    pub(super) cache_by_path: bool,
    /// Pass a backend's 421 on instead of retrying ([`Fault::GatewayRelaysBackend421`]).
    pub(super) relays_backend_421: bool,
    /// Store a backend's 421, freshness or not ([`Fault::GatewayStoresBackend421`]).
    pub(super) stores_backend_421: bool,
}

/// Most answers the gateway's cache holds; past it, nothing more is stored.
const MAX_STORED: usize = 1024;

impl Gateway {
    /// Answers a request that `role` serves: a GET from the cache where it holds the target's
    /// answer, else from the upstream, keeping what the upstream lets a shared cache store.
    /// Only a GET is answered from the store, or stored (RFC 9111 §2, §4).
    pub(super) async fn fetch(
        &self,
        role: Role,
        head: &RequestHead,
        forward: &Forward,
        host_instead: Option<&str>,
    ) -> Answer {
        let cacheable = head.method == "GET";
        if cacheable && let Some(stored) = self.stored(role, &forward.path) {
            return stored;
        }
        let fetched = self.forward(role, head, forward, host_instead).await;
        if cacheable {
            self.store(role, &forward.path, &fetched);
        }
        fetched
    }

    /// The stored answer for a request that `role` serves for `path`, if the cache holds one.
    fn stored(&self, role: Role, path: &str) -> Option<Answer> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.get(&self.cache_key(role, path)).cloned()
    }

    /// Stores `answer` to `role`'s `path` if its upstream let a shared cache keep it: a 200
    /// marked storable. A 421 is not heuristically cacheable (RFC 9110 §15.5.20) and the mock
    /// upstreams give theirs no freshness, so it is never stored (RFC 9111 §3).
    fn store(&self, role: Role, path: &str, answer: &Answer) {
        let allowed = answer.status == 200 && answer.cache_control == Some(STORABLE);
        let stored_all_the_same = self.stores_backend_421 && answer.status == 421;
        if !(allowed || stored_all_the_same) {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() < MAX_STORED {
            cache.insert(self.cache_key(role, path), answer.clone());
        }
    }

    /// The cache key: the target URI's tenant and path (RFC 9111 §2), or the path alone.
    fn cache_key(&self, role: Role, path: &str) -> String {
        if self.cache_by_path {
            path.to_owned()
        } else {
            format!("{}{path}", role.standard_name())
        }
    }

    /// Proxies the request to `role`'s upstream. `host_instead` is what a faulty gateway puts in
    /// the upstream Host in place of the request's authority. A 421 from the backend says the
    /// gateway's connection was the wrong one, which the client cannot fix: the request goes
    /// once more, on a fresh upstream connection (RFC 9110 §15.5.20 lets any client do so),
    /// unless the gateway relays the backend's 421 ([`Fault::GatewayRelaysBackend421`]).
    pub(super) async fn forward(
        &self,
        role: Role,
        head: &RequestHead,
        forward: &Forward,
        host_instead: Option<&str>,
    ) -> Answer {
        let answer = self.forward_once(role, head, forward, host_instead).await;
        if answer.status == 421 && !self.relays_backend_421 {
            return self.forward_once(role, head, forward, host_instead).await;
        }
        answer
    }

    /// A new connection to `role`'s upstream, or the 502 that answers for it.
    async fn connect(&self, role: Role, protocol: Protocol) -> Result<Connection, Answer> {
        let Some(address) = self
            .upstreams
            .iter()
            .find(|(candidate, _)| *candidate == role)
            .map(|(_, address)| *address)
        else {
            return Err(Answer::refusal(
                502,
                format!("bad gateway: no upstream for {role}\n"),
                false,
            ));
        };
        let connect = ConnectRequest {
            address,
            sni: self.send_sni.then_some(role.standard_name()),
            protocol,
            client_certificate: None,
            tickets: Arc::new(ConnectionTickets::new(
                Arc::new(TicketJar::default()),
                "upstream",
                None,
            )),
            tls: None,
            own_framing: false,
        };
        match client::connect(&self.credentials, connect, IDLE).await {
            Ok((connection, _)) => Ok(connection),
            Err(error) => Err(Answer::refusal(
                502,
                format!("bad gateway: {error:?}\n"),
                false,
            )),
        }
    }

    /// The origins that the ORIGIN frame of `role`'s upstream lists, read on an HTTP/2
    /// connection of their own: a request for `/` waits until the frames sent before its
    /// answer are in. Only [`Fault::GatewayRelaysOriginFrame`] asks, to pass them on.
    pub(super) async fn upstream_origins(&self, role: Role) -> Vec<String> {
        let Ok(mut connection) = self.connect(role, Protocol::Http2).await else {
            return Vec::new();
        };
        let request = WireRequest::get(role.standard_name().to_owned(), "/");
        let _ = tokio::time::timeout(IDLE, connection.send(&request)).await;
        connection
            .origin_frames()
            .into_iter()
            .flat_map(|frame| frame.origins)
            .collect()
    }

    /// Proxies the request to `role`'s upstream on a connection of its own.
    async fn forward_once(
        &self,
        role: Role,
        head: &RequestHead,
        forward: &Forward,
        host_instead: Option<&str>,
    ) -> Answer {
        // HTTP/1.1 downstream goes upstream as HTTP/1.1, HTTP/2 and HTTP/3 as HTTP/2, so that
        // both kinds of backend connection are exercised.
        let upstream_protocol = match head.protocol {
            Protocol::Http1 => Protocol::Http1,
            Protocol::Http2 | Protocol::Http3 => Protocol::Http2,
        };
        let mut connection = match self.connect(role, upstream_protocol).await {
            Ok(connection) => connection,
            Err(answer) => return answer,
        };
        // The gateway's Host is the request's authority (RFC 9113 §8.3.1), or the tenant's name
        // where the request named none.
        let authority = host_instead
            .map(str::to_owned)
            .or_else(|| head.authority.clone())
            .or_else(|| head.host.first().cloned())
            .filter(|authority| !authority.is_empty())
            .unwrap_or_else(|| role.standard_name().to_owned());
        let request = WireRequest {
            method: head.method.clone(),
            headers: forward
                .request_id
                .iter()
                .map(|id| (REQUEST_ID_HEADER.to_owned(), id.clone()))
                .collect(),
            body: (!forward.body.is_empty()).then(|| forward.body.clone()),
            ..WireRequest::get(authority, &forward.path)
        };
        match tokio::time::timeout(IDLE, connection.send(&request)).await {
            Ok(ExchangeOutcome::Response(response)) => Answer {
                status: response.status,
                tenant: response.tenant.as_deref().and_then(|label| {
                    Role::ALL
                        .into_iter()
                        .find(|role| role.tenant() == Some(label))
                }),
                body: format!("{}\n", response.body_excerpt.trim_end()),
                // The mock upstreams mark what a shared cache may store with this one value.
                cache_control: (response.cache_control.as_deref() == Some(STORABLE))
                    .then_some(STORABLE),
                close: false,
                content_type: "text/plain",
            },
            Ok(other) => Answer::refusal(502, format!("bad gateway: {other}\n"), false),
            Err(_) => Answer::refusal(504, "gateway timeout\n".to_owned(), false),
        }
    }
}
