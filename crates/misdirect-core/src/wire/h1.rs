//! The HTTP/1.1 request reader that the embedded target and the mock upstreams share: a pure
//! parser over the bytes received so far, which says whether they hold a whole request (head and
//! body, framed by `Content-Length` or chunked), need more, or are to be refused with a status.
//! The shells own the socket and call it again after every read.
//!
//! Limits bound memory whatever the peer sends: heads over [`MAX_HEAD`] are refused with 431,
//! bodies over [`MAX_BODY`] with 413 (or 400 when chunked), contradictory or unsupported framing
//! with 400 (RFC 9112 §6.3).

/// Largest request head read (431 beyond).
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest request body read, over any protocol (413 beyond).
pub const MAX_BODY: usize = 1024 * 1024;

/// Header fields a request head may have.
const MAX_FIELDS: usize = 128;

/// One HTTP/1.1 request as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent: origin form (`/path`) or absolute form (`https://host/path`).
    pub target: String,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header field.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    }

    /// Every value of a header field, list elements split at commas.
    pub fn headers_named(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .flat_map(|(_, value)| value.split(','))
            .map(|value| value.trim().to_owned())
            .collect()
    }
}

/// A request the reader will not take: the status to refuse it with, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

const fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

const MALFORMED_CHUNKED: Refusal = refuse(400, "bad request: malformed chunked body");

/// What the bytes received so far hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request, which took this many bytes from the start of the buffer.
    Request(Request, usize),
    /// More bytes are needed. Should the peer close now, `if_closed` is the refusal owed (a
    /// chunked body cut short), or `None` when the close simply ends the connection.
    Incomplete {
        if_closed: Option<Refusal>,
    },
    Refuse(Refusal),
}

/// Reads one request from the start of `buffer`.
pub fn parse_request(buffer: &[u8]) -> Parsed {
    let Some(head_end) = find(buffer, b"\r\n\r\n").map(|end| end + 4) else {
        if buffer.len() > MAX_HEAD {
            return Parsed::Refuse(refuse(431, "request head too large"));
        }
        return Parsed::Incomplete { if_closed: None };
    };
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut parsed = httparse::Request::new(&mut fields);
    if !matches!(
        parsed.parse(&buffer[..head_end]),
        Ok(httparse::Status::Complete(_))
    ) {
        return Parsed::Refuse(refuse(400, "bad request: unparsable request head"));
    }
    let mut request = Request {
        method: parsed.method.unwrap_or("").to_owned(),
        target: parsed.path.unwrap_or("").to_owned(),
        headers: parsed
            .headers
            .iter()
            .map(|header| {
                (
                    header.name.to_owned(),
                    String::from_utf8_lossy(header.value).trim().to_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
    };
    let rest = &buffer[head_end..];
    let codings = request.headers_named("transfer-encoding");
    if !codings.is_empty() {
        // A gateway streams a body of unknown length chunked (RFC 9112 §7.1); any other coding
        // is refused rather than mis-framed.
        if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            return Parsed::Refuse(refuse(400, "bad request: unsupported transfer coding"));
        }
        return match parse_chunked(rest) {
            Chunked::Body(body, used) => {
                request.body = body;
                Parsed::Request(request, head_end + used)
            }
            Chunked::Incomplete => Parsed::Incomplete {
                if_closed: Some(MALFORMED_CHUNKED),
            },
            Chunked::Malformed => Parsed::Refuse(MALFORMED_CHUNKED),
        };
    }
    let length = match request.headers_named("content-length").as_slice() {
        [] => 0,
        [one] => match one.parse::<usize>() {
            Ok(length) if length <= MAX_BODY => length,
            Ok(_) => return Parsed::Refuse(refuse(413, "request body too large")),
            Err(_) => {
                return Parsed::Refuse(refuse(400, "bad request: an invalid Content-Length"));
            }
        },
        _ => return Parsed::Refuse(refuse(400, "bad request: more than one Content-Length")),
    };
    if rest.len() < length {
        return Parsed::Incomplete { if_closed: None };
    }
    request.body = rest[..length].to_vec();
    Parsed::Request(request, head_end + length)
}

/// The authority of an absolute-form request target (`https://host:port/path`).
pub fn absolute_form_authority(target: &str) -> Option<String> {
    let rest = target
        .strip_prefix("https://")
        .or_else(|| target.strip_prefix("http://"))?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

enum Chunked {
    /// The body (trailers discarded) and how many bytes it took.
    Body(Vec<u8>, usize),
    Incomplete,
    Malformed,
}

/// Reads a chunked body from the start of `bytes`; over [`MAX_BODY`] it is malformed.
fn parse_chunked(bytes: &[u8]) -> Chunked {
    let mut body = Vec::new();
    let mut at = 0;
    // A line of the body (chunk size or trailer field) from `at`, and where the next begins.
    let line = |at: usize| -> Result<(&[u8], usize), Chunked> {
        match find(&bytes[at..], b"\r\n") {
            Some(end) => Ok((&bytes[at..at + end], at + end + 2)),
            None if bytes.len() - at > MAX_HEAD => Err(Chunked::Malformed),
            None => Err(Chunked::Incomplete),
        }
    };
    loop {
        let (size_line, next) = match line(at) {
            Ok(found) => found,
            Err(ended) => return ended,
        };
        let size_text = String::from_utf8_lossy(size_line);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return Chunked::Malformed;
        };
        at = next;
        if size == 0 {
            // Trailer fields up to the empty line.
            loop {
                match line(at) {
                    Ok((field, next)) => {
                        at = next;
                        if field.is_empty() {
                            return Chunked::Body(body, at);
                        }
                    }
                    Err(ended) => return ended,
                }
            }
        }
        if size > MAX_BODY - body.len() {
            return Chunked::Malformed;
        }
        if bytes.len() - at < size + 2 {
            return Chunked::Incomplete;
        }
        if &bytes[at + size..at + size + 2] != b"\r\n" {
            return Chunked::Malformed;
        }
        body.extend_from_slice(&bytes[at..at + size]);
        at += size + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(parsed: Parsed) -> (Request, usize) {
        match parsed {
            Parsed::Request(request, used) => (request, used),
            other => panic!("not a whole request: {other:?}"),
        }
    }

    #[test]
    fn a_request_with_a_body_and_what_follows_it() {
        let bytes = b"POST /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabcGET";
        let (parsed, used) = request(parse_request(bytes));
        assert_eq!(parsed.method, "POST");
        assert_eq!(parsed.target, "/x");
        assert_eq!(parsed.header("host").as_deref(), Some("a.test"));
        assert_eq!(parsed.body, b"abc");
        assert_eq!(&bytes[used..], b"GET");
    }

    #[test]
    fn absolute_form_authority_is_extracted() {
        assert_eq!(
            absolute_form_authority("https://c.test:4433/x?y"),
            Some("c.test:4433".into())
        );
        assert_eq!(absolute_form_authority("/x"), None);
    }

    #[test]
    fn a_request_needs_its_whole_head_and_body() {
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost: a"),
            Parsed::Incomplete { if_closed: None }
        );
        assert_eq!(
            parse_request(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab"),
            Parsed::Incomplete { if_closed: None }
        );
    }

    #[test]
    fn chunked_bodies_are_joined_and_trailers_dropped() {
        let bytes = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\nnext";
        let (parsed, used) = request(parse_request(bytes));
        assert_eq!(parsed.body, b"abcde");
        assert_eq!(&bytes[used..], b"next");
        let cut = &bytes[..bytes.len() - 10];
        assert_eq!(
            parse_request(cut),
            Parsed::Incomplete {
                if_closed: Some(MALFORMED_CHUNKED)
            }
        );
        assert_eq!(
            parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Parsed::Refuse(MALFORMED_CHUNKED)
        );
        assert_eq!(
            parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n"),
            Parsed::Refuse(MALFORMED_CHUNKED)
        );
    }

    #[test]
    fn framing_that_cannot_be_trusted_is_refused() {
        let status = |bytes: &[u8]| match parse_request(bytes) {
            Parsed::Refuse(refusal) => refusal.status,
            other => panic!("not refused: {other:?}"),
        };
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            400
        );
        assert_eq!(status(b"BAD\x01 / HTTP/1.1\r\n\r\n"), 400);
        let too_long = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(status(too_long.as_bytes()), 413);
        assert_eq!(status(&vec![b'a'; MAX_HEAD + 1]), 431);
    }
}
