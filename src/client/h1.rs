//! HTTP/1.1 over TLS, written by hand: the request line, `Host` and target form are exactly what
//! the scenario says, which no general-purpose client allows.
//!
//! Reading is defensive: a response head over 64 KiB or with more than 128 fields is a violation
//! (no answer), a body is read up to 1 MiB, and once the head is in, the response counts even if its body is
//! cut short (the connection is then marked closed, so the runner reconnects for the next request).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{LAST_WORDS, ResponseFields, WireRequest, closed_by};
use misdirect_core::observe::ExchangeOutcome;
use misdirect_core::scenario::TargetForm;

const MAX_HEAD: usize = 64 * 1024;
const MAX_FIELDS: usize = 128;
const MAX_BODY: usize = 1024 * 1024;
#[derive(Debug)]
pub struct Http1Connection<S = TlsStream<TcpStream>> {
    stream: S,
    /// Bytes read past the previous response.
    buffer: Vec<u8>,
    /// Why the connection can carry no further request, once that is so.
    closed: Option<String>,
    /// Whether the stream ended without TLS close_notify: a dropped connection, not a close.
    dropped: bool,
}

/// How the body of a response is delimited (RFC 9112 §6.3).
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

struct Head {
    status: u16,
    fields: ResponseFields,
    framing: Framing,
    close: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Http1Connection<S> {
    pub(super) fn new(stream: S) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
            closed: None,
            dropped: false,
        }
    }

    /// Why the connection cannot carry another request, if it cannot.
    pub(super) fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    pub(super) async fn send(&mut self, request: &WireRequest) -> ExchangeOutcome {
        if let Some(reason) = &self.closed {
            return ExchangeOutcome::Unsendable {
                detail: reason.clone(),
            };
        }
        let bytes = serialize(request);
        let written = async {
            self.stream.write_all(&bytes).await?;
            self.stream.flush().await
        };
        // A target may answer, or send an alert, and close before reading the whole request;
        // the write then fails, and what it said is read for a short while before the
        // connection counts as dropped.
        let write_failed = written.await.err();
        loop {
            let head = match &write_failed {
                None => self.read_head(request.method == "HEAD").await,
                Some(error) => {
                    match tokio::time::timeout(LAST_WORDS, self.read_head(request.method == "HEAD"))
                        .await
                    {
                        Ok(Err(ExchangeOutcome::Dropped { .. })) | Err(_) => Err(closed_by(error)),
                        Ok(read) => read,
                    }
                }
            };
            let head = match head {
                Ok(head) => head,
                Err(outcome) => return self.close(outcome),
            };
            // Interim responses (100 Continue) precede the final one.
            if (100..200).contains(&head.status) {
                continue;
            }
            let (body, cut_short) = self.read_body(&head.framing).await;
            if let Some(reason) = cut_short {
                self.closed = Some(reason);
            } else if head.close {
                self.closed = Some("the target sent Connection: close".to_owned());
            }
            return ExchangeOutcome::Response(head.fields.into_response(head.status, &body));
        }
    }

    fn close(&mut self, outcome: ExchangeOutcome) -> ExchangeOutcome {
        self.closed = Some(outcome.to_string());
        outcome
    }

    async fn read_head(&mut self, head_request: bool) -> Result<Head, ExchangeOutcome> {
        let head_end = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(over_limit("a response head larger than 64 KiB"));
            }
            if self.buffer.len() >= 5 && !self.buffer.starts_with(b"HTTP/") {
                let start = &self.buffer[..self.buffer.len().min(24)];
                return Err(violation(&format!(
                    "the answer does not begin with HTTP/ but with \"{}\"",
                    start.escape_ascii()
                )));
            }
            match self.fill().await {
                Ok(0) if self.buffer.is_empty() && self.dropped => {
                    return Err(ExchangeOutcome::Dropped {
                        detail: "the stream ended without TLS close_notify".to_owned(),
                    });
                }
                Ok(0) if self.buffer.is_empty() => {
                    return Err(ExchangeOutcome::ConnectionClosed {
                        detail: "the target closed the connection with TLS close_notify".to_owned(),
                    });
                }
                Ok(0) => return Err(violation("the connection ended inside a response head")),
                Ok(_) => {}
                Err(outcome) => return Err(outcome),
            }
        };
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut parsed = httparse::Response::new(&mut fields);
        match parsed.parse(&self.buffer[..head_end]) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(violation("an incomplete response head")),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(over_limit("a response head with more than 128 fields"));
            }
            Err(error) => return Err(violation(&format!("an unparsable response head: {error}"))),
        }
        let status = parsed.code.unwrap_or(0);
        let field = |name: &str| {
            parsed
                .headers
                .iter()
                .find(|header| header.name.eq_ignore_ascii_case(name))
                .map(|header| String::from_utf8_lossy(header.value).trim().to_owned())
        };
        let has_token = |name: &str, token: &str| {
            parsed
                .headers
                .iter()
                .filter(|header| header.name.eq_ignore_ascii_case(name))
                .flat_map(|header| header.value.split(|b| *b == b','))
                .any(|value| {
                    String::from_utf8_lossy(value)
                        .trim()
                        .eq_ignore_ascii_case(token)
                })
        };
        let transfer_encoded = field("transfer-encoding").is_some();
        let framing = if head_request || matches!(status, 100..=199 | 204 | 304) {
            Framing::Empty
        } else if has_token("transfer-encoding", "chunked") {
            Framing::Chunked
        } else if transfer_encoded {
            // Another transfer coding: only the end of the connection delimits it.
            Framing::UntilClose
        } else {
            match field("content-length").map(|value| value.parse::<usize>()) {
                Some(Ok(length)) => Framing::Length(length),
                Some(Err(_)) => return Err(violation("an invalid Content-Length")),
                None => Framing::UntilClose,
            }
        };
        let head = Head {
            status,
            fields: ResponseFields::from_lookup(field),
            framing,
            close: has_token("connection", "close"),
        };
        self.buffer.drain(..head_end);
        Ok(head)
    }

    /// Reads a body up to [`MAX_BODY`]; the second value says why the connection cannot be reused
    /// when the body was cut short or ran to the end of the connection.
    async fn read_body(&mut self, framing: &Framing) -> (Vec<u8>, Option<String>) {
        match framing {
            Framing::Empty => (Vec::new(), None),
            Framing::Length(length) => {
                let wanted = (*length).min(MAX_BODY);
                let cut = self.fill_to(wanted).await;
                let body: Vec<u8> = self.buffer.drain(..wanted.min(self.buffer.len())).collect();
                match cut {
                    Some(reason) => (body, Some(reason)),
                    None if *length > MAX_BODY => (
                        body,
                        Some(format!(
                            "a body of {length} bytes, of which the harness reads 1 MiB"
                        )),
                    ),
                    None => (body, None),
                }
            }
            Framing::Chunked => self.read_chunked().await,
            Framing::UntilClose => {
                while self.buffer.len() < MAX_BODY {
                    match self.fill().await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                self.buffer.truncate(MAX_BODY);
                let body = std::mem::take(&mut self.buffer);
                (
                    body,
                    Some("the response body ran to the end of the connection".to_owned()),
                )
            }
        }
    }

    async fn read_chunked(&mut self) -> (Vec<u8>, Option<String>) {
        let mut body = Vec::new();
        loop {
            let line = match self.read_line().await {
                Ok(line) => line,
                Err(reason) => return (body, Some(reason)),
            };
            let size_text = line.split(';').next().unwrap_or("").trim().to_owned();
            let size = match usize::from_str_radix(&size_text, 16) {
                Ok(size) if size <= MAX_BODY - body.len() => size,
                Ok(_) => return (body, Some("a chunked body over 1 MiB".to_owned())),
                Err(_) => return (body, Some(format!("an invalid chunk size `{size_text}`"))),
            };
            if size == 0 {
                // Trailer fields up to the empty line.
                loop {
                    match self.read_line().await {
                        Ok(line) if line.is_empty() => return (body, None),
                        Ok(_) => {}
                        Err(reason) => return (body, Some(reason)),
                    }
                }
            }
            if let Some(reason) = self.fill_to(size + 2).await {
                return (body, Some(reason));
            }
            if &self.buffer[size..size + 2] != b"\r\n" {
                return (body, Some("a chunk not followed by CRLF".to_owned()));
            }
            body.extend(self.buffer.drain(..size + 2).take(size));
        }
    }

    /// One CRLF-terminated line, without the CRLF.
    async fn read_line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                self.buffer.drain(..end + 2);
                return Ok(line);
            }
            if self.buffer.len() > MAX_HEAD {
                return Err("a chunk line over 64 KiB".to_owned());
            }
            match self.fill().await {
                Ok(0) => return Err("the connection ended inside a chunked body".to_owned()),
                Ok(_) => {}
                Err(outcome) => return Err(outcome.to_string()),
            }
        }
    }

    /// Reads until the buffer holds `wanted` bytes; says why if it cannot.
    async fn fill_to(&mut self, wanted: usize) -> Option<String> {
        while self.buffer.len() < wanted {
            match self.fill().await {
                Ok(0) => return Some("the connection ended inside a response body".to_owned()),
                Ok(_) => {}
                Err(outcome) => return Some(outcome.to_string()),
            }
        }
        None
    }

    /// Reads more bytes into the buffer; 0 means the target closed the connection.
    async fn fill(&mut self) -> Result<usize, ExchangeOutcome> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(read) => {
                self.buffer.extend_from_slice(&chunk[..read]);
                Ok(read)
            }
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.dropped = true;
                Ok(0)
            }
            Err(error) => Err(closed_by(&error)),
        }
    }
}

fn serialize(request: &WireRequest) -> Vec<u8> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\n",
        request.method,
        request.request_target()
    );
    // No authority field is a request without Host (a scenario's `authority: none`).
    if let Some(host) = request.host_header() {
        head.push_str(&format!("host: {host}\r\n"));
    }
    // In origin form the authority is the Host line; a separate `host` is a second one.
    if let (TargetForm::Origin, Some(host)) = (request.form, &request.host) {
        head.push_str(&format!("host: {host}\r\n"));
    }
    for (name, value) in &request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = &request.body {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if let Some(body) = &request.body {
        bytes.extend_from_slice(body);
    }
    bytes
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn violation(what: &str) -> ExchangeOutcome {
    ExchangeOutcome::Violation {
        detail: format!("the target violated HTTP/1.1: {what}"),
    }
}

fn over_limit(what: &str) -> ExchangeOutcome {
    ExchangeOutcome::Violation {
        detail: format!("the target sent {what}, past the harness's limit"),
    }
}

#[cfg(test)]
mod tests {
    use crate::client::AuthorityField;
    use misdirect_core::scenario::Scheme;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    fn get(authority: &str) -> WireRequest {
        WireRequest {
            method: "GET".into(),
            scheme: Scheme::Https,
            authority_field: AuthorityField::Once,
            authority: authority.into(),
            host: None,
            form: TargetForm::Origin,
            path: "/".into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Sends two requests to a peer that answers with `script` and then closes; returns both
    /// outcomes and whether the connection counts as closed after each.
    async fn exchange(script: Vec<u8>) -> Vec<(ExchangeOutcome, bool)> {
        let (client, mut server) = duplex(4 * 1024 * 1024);
        let peer = tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let _ = server.read(&mut request).await;
            let _ = server.write_all(&script).await;
            let _ = server.shutdown().await;
            // Take whatever else the client sends until it hangs up.
            while matches!(server.read(&mut request).await, Ok(read) if read > 0) {}
        });
        let mut connection = Http1Connection::new(client);
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let outcome = connection.send(&get("a.test")).await;
            outcomes.push((outcome, connection.closed().is_some()));
        }
        drop(connection);
        peer.await.unwrap();
        outcomes
    }

    fn status(outcome: &ExchangeOutcome) -> Option<(u16, Option<&str>)> {
        match outcome {
            ExchangeOutcome::Response(response) => {
                Some((response.status, response.tenant.as_deref()))
            }
            _ => None,
        }
    }

    #[tokio::test]
    async fn keep_alive_responses_are_framed_by_length_and_chunks() {
        let script = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\ntenant=alpha\nHTTP/1.1 421 Misdirected Request\r\ntransfer-encoding: chunked\r\n\r\n4\r\nnope\r\n0\r\n\r\n".to_vec();
        let outcomes = exchange(script).await;
        assert_eq!(status(&outcomes[0].0), Some((200, Some("alpha"))));
        assert!(!outcomes[0].1);
        assert_eq!(status(&outcomes[1].0), Some((421, None)));
    }

    #[tokio::test]
    async fn a_hostile_chunk_size_cuts_the_body_without_panicking() {
        let script = b"HTTP/1.1 200 OK\r\nx-misdirect-tenant: bravo\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffff\r\n".to_vec();
        let outcomes = exchange(script).await;
        assert_eq!(status(&outcomes[0].0), Some((200, Some("bravo"))));
        assert!(outcomes[0].1, "a cut body leaves the connection unusable");
        assert!(matches!(outcomes[1].0, ExchangeOutcome::Unsendable { .. }));
    }

    #[tokio::test]
    async fn an_oversized_body_is_read_up_to_the_limit() {
        let mut script =
            b"HTTP/1.1 200 OK\r\ncontent-length: 2000000\r\n\r\ntenant=charlie ".to_vec();
        script.resize(script.len() + 1_100_000, b'x');
        let outcomes = exchange(script).await;
        assert_eq!(status(&outcomes[0].0), Some((200, Some("charlie"))));
        assert!(outcomes[0].1);
    }

    #[tokio::test]
    async fn garbage_is_a_violation_not_a_refusal() {
        let outcomes = exchange(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()).await;
        assert!(
            matches!(outcomes[0].0, ExchangeOutcome::Violation { .. }),
            "{:?}",
            outcomes[0].0
        );
        assert_eq!(outcomes[0].0.refused(), None);
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for index in 0..200 {
            many.extend_from_slice(format!("x-{index}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let outcomes = exchange(many).await;
        assert!(matches!(outcomes[0].0, ExchangeOutcome::Violation { .. }));
        assert!(outcomes[0].0.to_string().contains("128 fields"));
    }

    #[tokio::test]
    async fn a_close_before_any_response_is_a_closed_connection() {
        let outcomes = exchange(Vec::new()).await;
        assert!(matches!(
            outcomes[0].0,
            ExchangeOutcome::ConnectionClosed { .. }
        ));
        assert_eq!(outcomes[0].0.refused(), Some(true));
    }

    #[tokio::test]
    async fn connection_close_is_honoured() {
        let outcomes = exchange(b"HTTP/1.1 421 Misdirected Request\r\nconnection: keep-alive, close\r\ncontent-length: 0\r\n\r\n".to_vec()).await;
        assert_eq!(status(&outcomes[0].0), Some((421, None)));
        assert!(outcomes[0].1);
    }

    #[test]
    fn absolute_form_keeps_host_separate() {
        let request = WireRequest {
            method: "GET".into(),
            scheme: Scheme::Https,
            authority_field: AuthorityField::Once,
            authority: "c.test:4433".into(),
            host: Some("a.test:4433".into()),
            form: TargetForm::Absolute,
            path: "/x".into(),
            headers: vec![("x-probe".into(), "1".into())],
            body: Some(bytes::Bytes::from_static(b"hi")),
        };
        assert_eq!(
            String::from_utf8(serialize(&request)).unwrap(),
            "GET https://c.test:4433/x HTTP/1.1\r\nhost: a.test:4433\r\nx-probe: 1\r\ncontent-length: 2\r\n\r\nhi"
        );
    }
}
