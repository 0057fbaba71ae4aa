//! HTTP/1.1 over TLS, written by hand: the request line, `Host` and target form are exactly what
//! the scenario says, which no general-purpose client allows.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{WireRequest, closed_by};
use crate::observe::ExchangeOutcome;
use crate::scenario::TargetForm;

/// Longest response head and body the client reads; enough for any tenant answer.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug)]
pub struct Http1Connection {
    stream: TlsStream<TcpStream>,
    /// Bytes read past the previous response.
    buffer: Vec<u8>,
    /// Set once the target closed, or announced `Connection: close`.
    closed: Option<String>,
}

impl Http1Connection {
    pub(super) fn new(stream: TlsStream<TcpStream>) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
            closed: None,
        }
    }

    pub(super) async fn send(&mut self, request: &WireRequest) -> ExchangeOutcome {
        if let Some(reason) = &self.closed {
            return ExchangeOutcome::ConnectionClosed {
                detail: format!("the connection was already closed: {reason}"),
            };
        }
        if let Err(error) = self.stream.write_all(&serialize(request)).await {
            return self.close(closed_by(&error));
        }
        if let Err(error) = self.stream.flush().await {
            return self.close(closed_by(&error));
        }
        loop {
            match self.read_response(request.method == "HEAD").await {
                // Interim responses (100 Continue) precede the final one.
                Ok((status, _)) if (100..200).contains(&status.status) => continue,
                Ok((response, close)) => {
                    if close {
                        self.closed = Some("the target sent Connection: close".to_owned());
                    }
                    return ExchangeOutcome::Response(response);
                }
                Err(outcome) => return self.close(outcome),
            }
        }
    }

    fn close(&mut self, outcome: ExchangeOutcome) -> ExchangeOutcome {
        self.closed = Some(outcome.to_string());
        outcome
    }

    async fn read_response(
        &mut self,
        head_request: bool,
    ) -> Result<(crate::observe::Response, bool), ExchangeOutcome> {
        let head_end = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(protocol_error("response head larger than 64 KiB"));
            }
            if self.fill().await? == 0 {
                return Err(ExchangeOutcome::ConnectionClosed {
                    detail: if self.buffer.is_empty() {
                        "the target closed the connection".to_owned()
                    } else {
                        "the target closed the connection inside a response head".to_owned()
                    },
                });
            }
        };
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(&self.buffer[..head_end]) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(protocol_error("incomplete response head"));
            }
            Err(error) => {
                return Err(protocol_error(&format!(
                    "unparsable response head: {error}"
                )));
            }
        }
        let status = parsed.code.unwrap_or(0);
        let header = |name: &str| {
            parsed
                .headers
                .iter()
                .find(|header| header.name.eq_ignore_ascii_case(name))
                .map(|header| String::from_utf8_lossy(header.value).trim().to_owned())
        };
        let fields = super::ResponseFields {
            tenant: header(crate::deployment::TENANT_HEADER),
            cache_control: header("cache-control"),
            expires: header("expires"),
        };
        let close = header("connection").is_some_and(|value| {
            value
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("close"))
        });
        let chunked = header("transfer-encoding")
            .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
        let length = header("content-length").and_then(|value| value.parse::<usize>().ok());
        self.buffer.drain(..head_end);
        let no_body =
            head_request || status == 204 || status == 304 || (100..200).contains(&status);
        let body = if no_body {
            Vec::new()
        } else if chunked {
            self.read_chunked().await?
        } else if let Some(length) = length {
            self.read_exact_body(length).await?
        } else {
            // No framing: the body runs to the end of the connection (RFC 9112 §6.3).
            while self.fill().await? > 0 {
                if self.buffer.len() > MAX_BODY {
                    return Err(protocol_error("response body larger than 1 MiB"));
                }
            }
            self.closed = Some("the response body ran to the end of the connection".to_owned());
            std::mem::take(&mut self.buffer)
        };
        Ok((fields.into_response(status, &body), close))
    }

    async fn read_exact_body(&mut self, length: usize) -> Result<Vec<u8>, ExchangeOutcome> {
        if length > MAX_BODY {
            return Err(protocol_error("response body larger than 1 MiB"));
        }
        while self.buffer.len() < length {
            if self.fill().await? == 0 {
                return Err(ExchangeOutcome::ConnectionClosed {
                    detail: "the target closed the connection inside a response body".to_owned(),
                });
            }
        }
        Ok(self.buffer.drain(..length).collect())
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>, ExchangeOutcome> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(end) = find(&self.buffer, b"\r\n") {
                    break end;
                }
                if self.fill().await? == 0 {
                    return Err(protocol_error("connection closed inside a chunked body"));
                }
            };
            let size_text = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
            let size_text = size_text.split(';').next().unwrap_or("").trim().to_owned();
            let size = usize::from_str_radix(&size_text, 16)
                .map_err(|_| protocol_error(&format!("invalid chunk size `{size_text}`")))?;
            self.buffer.drain(..line_end + 2);
            if size == 0 {
                // Skip trailers up to the empty line.
                loop {
                    let end = loop {
                        if let Some(end) = find(&self.buffer, b"\r\n") {
                            break end;
                        }
                        if self.fill().await? == 0 {
                            return Ok(body);
                        }
                    };
                    self.buffer.drain(..end + 2);
                    if end == 0 {
                        return Ok(body);
                    }
                }
            }
            if body.len() + size > MAX_BODY {
                return Err(protocol_error("response body larger than 1 MiB"));
            }
            let chunk = self.read_exact_body(size + 2).await?;
            body.extend_from_slice(&chunk[..size]);
        }
    }

    /// Reads more bytes into the buffer; 0 means the target closed the connection.
    async fn fill(&mut self) -> Result<usize, ExchangeOutcome> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(read) => {
                self.buffer.extend_from_slice(&chunk[..read]);
                Ok(read)
            }
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
            Err(error) => Err(closed_by(&error)),
        }
    }
}

fn serialize(request: &WireRequest) -> Vec<u8> {
    let target = match request.form {
        TargetForm::Origin => request.path.clone(),
        TargetForm::Absolute => format!("https://{}{}", request.authority, request.path),
    };
    let host = match request.form {
        TargetForm::Origin => &request.authority,
        TargetForm::Absolute => request.host.as_ref().unwrap_or(&request.authority),
    };
    let mut head = format!("{} {target} HTTP/1.1\r\nhost: {host}\r\n", request.method);
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

fn protocol_error(detail: &str) -> ExchangeOutcome {
    ExchangeOutcome::ConnectionClosed {
        detail: format!("HTTP/1.1 protocol error: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_keeps_host_separate() {
        let request = WireRequest {
            method: "GET".into(),
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
