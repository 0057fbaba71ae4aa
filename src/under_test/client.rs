//! Clients under test: misdirect's own reference client (correct, or with one client fault), or
//! any HTTP client run from a command template. Both fetch the URLs a client scenario lists from
//! the embedded target playing the origin; what they did is judged from what the origin saw.
//!
//! The reference client behaves as RFC 9110 §4.3.3, §4.3.4, RFC 9113 §9.1.1 and the Fetch
//! standard ask: it reuses an HTTP/1.1 connection only for the host it was opened for, an HTTP/2
//! or HTTP/3 connection for another origin only when the certificate presented on it covers that
//! origin, and after a 421 it retries once, on a new connection whose
//! SNI names the origin, never again on the connection that refused it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::client::tls::{ConnectionTickets, Credentials, TicketJar};
use crate::client::{
    self, AuthorityField, ConnectError, ConnectRequest, Connection, WireRequest, bounded,
};
use misdirect_core::deployment::{Role, fetch_path, san_covers};
use misdirect_core::fault::Fault;
use misdirect_core::observe::ExchangeOutcome;
use misdirect_core::protocol::Protocol;
use misdirect_core::scenario::Fetch;

/// How many times a client with [`Fault::ClientRetriesForever`] retries; bounded, as everything
/// misdirect runs is.
const ENDLESS_RETRIES: usize = 8;

/// The URL of fetch `index` on a target listening on `port`.
pub fn fetch_url(fetch: &Fetch, index: usize, port: u16) -> String {
    format!(
        "https://{}:{port}{}",
        fetch.role.standard_name(),
        fetch_path(index)
    )
}

struct Pooled {
    connection: Connection,
    /// The name the connection was opened for (its initial origin, RFC 8336 §2.3).
    sni: String,
    sans: Vec<String>,
    /// Hosts this connection answered 421 for.
    refused: Vec<String>,
}

/// Runs the reference client over `protocol` against the origin at `address`; returns a line
/// per attempt for the transcript.
pub async fn run_reference(
    credentials: &Credentials,
    address: SocketAddr,
    protocol: Protocol,
    fetches: &[Fetch],
    fault: Option<Fault>,
    deadline: Duration,
) -> Vec<String> {
    let mut pool: Vec<Pooled> = Vec::new();
    let mut log = Vec::new();
    let jar = Arc::new(TicketJar::default());
    let connect = OpenRequest {
        credentials,
        address,
        protocol,
        jar: &jar,
        own_framing: fault == Some(Fault::ClientOmitsAuthority),
        deadline,
    };
    for (index, fetch) in fetches.iter().enumerate() {
        let host = fetch.role.standard_name();
        let mut request = WireRequest {
            method: fetch.method.clone(),
            authority_field: if fault == Some(Fault::ClientOmitsAuthority) {
                AuthorityField::Absent
            } else {
                AuthorityField::Once
            },
            body: fetch.body.clone().map(Bytes::from),
            ..WireRequest::get(format!("{host}:{}", address.port()), &fetch_path(index))
        };
        let origin = format!("https://{host}:{}", address.port());
        let usable = |pooled: &Pooled| {
            if fault == Some(Fault::ClientNeverReuses) {
                return false;
            }
            if fault == Some(Fault::ClientCoalescesUncovered) {
                return true;
            }
            // RFC 9110 §4.3.3: an HTTP/1.1 connection is for the host it was opened for.
            if protocol == Protocol::Http1 && pooled.sni != host {
                return false;
            }
            let covered = pooled.sans.iter().any(|san| san_covers(san, host));
            let refused = fault != Some(Fault::ClientForgets421)
                && pooled.refused.iter().any(|refused| refused == host);
            // RFC 8336 §2.4: with ORIGIN frames, only origins in the Origin Set (the SNI origin
            // and those listed) may use the connection.
            let in_origin_set = fault == Some(Fault::ClientIgnoresOrigin)
                || pooled.sni == host
                || pooled.connection.origin_set().is_none_or(|listed| {
                    listed
                        .iter()
                        .any(|listed| listed.eq_ignore_ascii_case(&origin))
                });
            covered && !refused && in_origin_set
        };
        // An ORIGIN frame must be known before a connection is reused for another origin.
        for pooled in &pool {
            pooled.connection.settle(Duration::from_millis(200)).await;
        }
        if fault == Some(Fault::ClientRejectsMisplacedOrigin) {
            // Treats an ORIGIN frame off stream 0 as a connection error, instead of ignoring it.
            pool.retain(|pooled| {
                pooled
                    .connection
                    .origin_frames()
                    .iter()
                    .all(|frame| frame.stream == 0)
            });
        }
        let mut slot = match pool.iter().position(usable) {
            Some(slot) => slot,
            None => match connect.open(host).await {
                Ok(pooled) => {
                    pool.push(pooled);
                    pool.len() - 1
                }
                Err(error) => {
                    log.push(format!(
                        "fetch {index}: cannot connect for {host}: {error:?}"
                    ));
                    continue;
                }
            },
        };
        let retries = match fault {
            Some(Fault::ClientRetriesForever) => ENDLESS_RETRIES,
            _ => 1,
        };
        for attempt in 0..=retries {
            if fault == Some(Fault::ClientStaleHost) && protocol == Protocol::Http2 {
                request.host = Some(format!("{}:{}", pool[slot].sni, address.port()));
            }
            let outcome = bounded(deadline, pool[slot].connection.send(&request)).await;
            log.push(format!(
                "fetch {index} attempt {attempt} ({host}): {outcome}"
            ));
            let misdirected =
                matches!(&outcome, ExchangeOutcome::Response(response) if response.status == 421);
            if !misdirected || attempt == retries {
                break;
            }
            pool[slot].refused.push(host.to_owned());
            if fault == Some(Fault::ClientDropsBodyOnRetry) {
                request.body = None;
            }
            if fault == Some(Fault::ClientRetriesSameConnection) {
                continue;
            }
            match connect.open(host).await {
                Ok(pooled) => {
                    pool.push(pooled);
                    slot = pool.len() - 1;
                }
                Err(error) => {
                    log.push(format!(
                        "fetch {index}: cannot reconnect for {host}: {error:?}"
                    ));
                    break;
                }
            }
        }
    }
    log
}

/// What every connection the reference client opens in one case has in common.
struct OpenRequest<'a> {
    credentials: &'a Credentials,
    address: SocketAddr,
    protocol: Protocol,
    jar: &'a Arc<TicketJar>,
    /// Requests the h2 crate cannot send travel on this connection.
    own_framing: bool,
    deadline: Duration,
}

impl OpenRequest<'_> {
    /// Opens a connection for `host`, with its name in SNI.
    async fn open(&self, host: &str) -> Result<Pooled, ConnectError> {
        let request = ConnectRequest {
            address: self.address,
            sni: Some(host),
            protocol: self.protocol,
            client_certificate: None,
            tickets: Arc::new(ConnectionTickets::new(Arc::clone(self.jar), host, None)),
            tls: None,
            own_framing: self.own_framing,
        };
        let (connection, established) =
            client::connect(self.credentials, request, self.deadline).await?;
        Ok(Pooled {
            connection,
            sni: host.to_owned(),
            sans: established.peer_sans,
            refused: Vec::new(),
        })
    }
}

/// A client under test run from a command template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandClient {
    /// Run with `sh -c`; placeholders: `{urls}` (the fetch URLs, space-separated), `{driver}` (a
    /// page on the origin that fetches them in order, for browsers), `{resolve}`
    /// (curl `--resolve` options mapping every name to the origin), `{ca}` (the CA file),
    /// `{port}`, `{protocol}` (h1, h2 or h3).
    pub template: String,
    /// The client's name, when a client profile gave it.
    pub name: Option<String>,
}

/// What running a command client gave.
#[derive(Debug)]
pub struct CommandRun {
    pub command: String,
    pub status: Option<i32>,
    pub stderr: String,
}

/// The placeholders a client command may use.
pub const PLACEHOLDERS: &[&str] = &[
    "{urls}",
    "{driver}",
    "{resolve}",
    "{ca}",
    "{port}",
    "{protocol}",
];

/// The first `{word}` in a command that is no placeholder (`{url}` for `{urls}`, say). The
/// shell's own braces are left alone: `${VAR}`, and `{a,b}` or `{ cmd; }` with other than
/// letters inside.
pub fn unknown_placeholder(template: &str) -> Option<String> {
    template.match_indices('{').find_map(|(at, _)| {
        if template[..at].ends_with('$') {
            return None;
        }
        let inner = template[at + 1..].split_once('}')?.0;
        let word = !inner.is_empty() && inner.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        let written = format!("{{{inner}}}");
        (word && !PLACEHOLDERS.contains(&written.as_str())).then_some(written)
    })
}

impl CommandClient {
    /// A command template, or why it cannot fetch a client scenario's URLs: it must name them
    /// (`{urls}` or `{driver}`) and use no placeholder misdirect does not fill in.
    pub fn parse(template: &str) -> Result<Self, String> {
        if !template.contains("{urls}") && !template.contains("{driver}") {
            return Err("a client command needs {urls} or {driver}".to_owned());
        }
        if let Some(unknown) = unknown_placeholder(template) {
            return Err(format!(
                "{unknown} is no placeholder; a client command may use {}",
                PLACEHOLDERS.join(" ")
            ));
        }
        Ok(Self {
            template: template.to_owned(),
            name: None,
        })
    }

    /// Renders the template for these fetches.
    pub fn render(&self, fetches: &[Fetch], port: u16, ca: &Path, protocol: Protocol) -> String {
        let urls: Vec<String> = fetches
            .iter()
            .enumerate()
            .map(|(index, fetch)| fetch_url(fetch, index, port))
            .collect();
        let resolve: Vec<String> = Role::ALL
            .iter()
            .map(|role| format!("--resolve {}:{port}:127.0.0.1", role.standard_name()))
            .collect();
        // A page on the first fetch's origin that fetches them all in order, for browsers.
        let driver = fetches.first().map_or_else(String::new, |first| {
            let query: Vec<String> = urls.iter().map(|url| format!("u={url}")).collect();
            format!(
                "https://{}:{port}{}?{}",
                first.role.standard_name(),
                crate::embedded::driver::DRIVER_PATH,
                query.join("&")
            )
        });
        self.template
            .replace("{urls}", &urls.join(" "))
            .replace("{driver}", &driver)
            .replace("{resolve}", &resolve.join(" "))
            .replace("{ca}", &ca.display().to_string())
            .replace("{port}", &port.to_string())
            .replace("{protocol}", protocol.key())
    }

    /// Runs the rendered command, killing it at the deadline. Its stderr is read as it comes
    /// and kept up to 64 KiB, so that a client that writes without end costs no memory.
    pub async fn run(&self, command: String, deadline: Duration) -> CommandRun {
        let mut builder = tokio::process::Command::new("sh");
        builder
            .arg("-c")
            .arg(&command)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        // A group of its own, so that what the shell starts can be stopped with it.
        #[cfg(unix)]
        builder.process_group(0);
        let mut child = match builder.spawn() {
            Ok(child) => child,
            Err(error) => {
                return CommandRun {
                    command,
                    status: None,
                    stderr: format!("cannot start: {error}"),
                };
            }
        };
        // Stops the whole group (`sh` and what it ran) unless it ended: at the deadline, and
        // when the case is dropped because the run was interrupted.
        let mut group = GroupGuard(child.id());
        let mut stderr = child.stderr.take();
        let mut kept = Vec::new();
        let outcome = tokio::time::timeout(deadline, async {
            if let Some(stderr) = &mut stderr {
                read_capped(stderr, &mut kept).await;
            }
            child.wait().await
        })
        .await;
        if matches!(outcome, Ok(Ok(_))) {
            group.0 = None;
        }
        let mut stderr = String::from_utf8_lossy(&kept).into_owned();
        if kept.len() >= MAX_STDERR {
            stderr.push_str(" […cut at 64 KiB]");
        }
        match outcome {
            Ok(Ok(status)) => CommandRun {
                command,
                status: status.code(),
                stderr: stderr.chars().take(2000).collect(),
            },
            Ok(Err(error)) => CommandRun {
                command,
                status: None,
                stderr: error.to_string(),
            },
            Err(_) => CommandRun {
                command,
                status: None,
                stderr: format!("killed after {} s", deadline.as_secs()),
            },
        }
    }
}

/// Most bytes of a client's stderr kept.
const MAX_STDERR: usize = 64 * 1024;

/// Reads `from` to its end, keeping the first [`MAX_STDERR`] bytes in `kept`.
async fn read_capped(from: &mut tokio::process::ChildStderr, kept: &mut Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut chunk = [0u8; 8192];
    while let Ok(read) = from.read(&mut chunk).await {
        if read == 0 {
            break;
        }
        let room = MAX_STDERR.saturating_sub(kept.len()).min(read);
        kept.extend_from_slice(&chunk[..room]);
    }
}

/// The process group of a client command, killed when dropped unless it ended.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            crate::under_test::launcher::signal_group(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
}
