//! The HTTP/1.1 request reader that the embedded target and the mock upstreams share: a state
//! machine over the bytes received so far, which consumes them as it goes and says whether they
//! made a whole request (head and body, framed by `Content-Length` or chunked), need more, or are
//! to be refused with a status. The shells own the socket and call it again after every read.
//!
//! Limits bound what is held whatever the peer sends: heads and chunk or trailer lines over
//! [`MAX_HEAD`] are refused (431 for a head, 400 in a chunked body), bodies over [`MAX_BODY`] with
//! 413 (or 400 when chunked), contradictory or unsupported framing with 400 (RFC 9112 §6.3).

/// Largest request head read (431 beyond).
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest request body read. Over HTTP/1.1 a larger `Content-Length` is refused with 413 and a
/// larger chunked body with 400; the HTTP/2 shell stops reading at it, the HTTP/3 shell leaves out
/// the data that would go beyond it.
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

const fn refuse_with(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

const MALFORMED_CHUNKED: Refusal = refuse_with(400, "bad request: malformed chunked body");

/// What reading gave so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A whole request; the bytes it took are gone from the buffer, what follows it stays.
    Request(Request),
    /// More bytes are needed. Should the peer close now, `if_closed` is the refusal owed (a
    /// chunked body cut short), or `None` when the close simply ends the connection.
    NeedMore { if_closed: Option<Refusal> },
    /// The request is refused: answer with the refusal and close the connection, since what is
    /// left in the buffer no longer starts at a request.
    Refuse(Refusal),
}

/// Reads one request from the bytes a connection received, consuming them as it goes (the head,
/// then a chunk-size line, a chunk or a trailer line at a time), so that what is held stays
/// within the limits whatever the peer sends. Call [`RequestReader::read`] again after every
/// read from the socket; start a new reader for the next request.
#[derive(Debug, Default)]
pub struct RequestReader {
    state: State,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Head,
    /// A `Content-Length` body of this many bytes.
    Body { request: Request, length: usize },
    /// A chunked body, before the next chunk-size line.
    ChunkSize { request: Request },
    /// A chunk of `size` bytes and its CRLF.
    ChunkData { request: Request, size: usize },
    /// Trailer fields up to the empty line (dropped).
    Trailers { request: Request },
}

impl RequestReader {
    /// Consumes what it can of `buffer`.
    pub fn read(&mut self, buffer: &mut Vec<u8>) -> Progress {
        loop {
            let (state, progress) = step(std::mem::take(&mut self.state), buffer);
            self.state = state;
            if let Some(progress) = progress {
                return progress;
            }
        }
    }
}

/// One step of reading: the next state, and what to report if reading stops here.
fn step(state: State, buffer: &mut Vec<u8>) -> (State, Option<Progress>) {
    let need_more = |state, if_closed| (state, Some(Progress::NeedMore { if_closed }));
    let refuse = |refusal| (State::Head, Some(Progress::Refuse(refusal)));
    match state {
        State::Head => {
            let Some(head_end) = find(buffer, b"\r\n\r\n").map(|end| end + 4) else {
                if buffer.len() > MAX_HEAD {
                    return refuse(refuse_with(431, "request head too large"));
                }
                return need_more(State::Head, None);
            };
            let head = parse_head(&buffer[..head_end]);
            buffer.drain(..head_end);
            match head {
                Ok(next) => (next, None),
                Err(refusal) => refuse(refusal),
            }
        }
        State::Body { request, length } if buffer.len() < length => {
            need_more(State::Body { request, length }, None)
        }
        State::Body {
            mut request,
            length,
        } => {
            request.body = buffer.drain(..length).collect();
            (State::Head, Some(Progress::Request(request)))
        }
        State::ChunkSize { request } => {
            let line = match take_line(buffer) {
                Ok(line) => line,
                Err(Some(refusal)) => return refuse(refusal),
                Err(None) => {
                    return need_more(State::ChunkSize { request }, Some(MALFORMED_CHUNKED));
                }
            };
            let line = String::from_utf8_lossy(&line).into_owned();
            let size_text = line.split(';').next().unwrap_or("").trim();
            let Ok(size) = usize::from_str_radix(size_text, 16) else {
                return refuse(MALFORMED_CHUNKED);
            };
            if size == 0 {
                (State::Trailers { request }, None)
            } else if size > MAX_BODY - request.body.len() {
                refuse(MALFORMED_CHUNKED)
            } else {
                (State::ChunkData { request, size }, None)
            }
        }
        State::ChunkData { request, size } if buffer.len() < size + 2 => {
            need_more(State::ChunkData { request, size }, Some(MALFORMED_CHUNKED))
        }
        State::ChunkData { mut request, size } => {
            if &buffer[size..size + 2] != b"\r\n" {
                return refuse(MALFORMED_CHUNKED);
            }
            request.body.extend(buffer.drain(..size + 2).take(size));
            (State::ChunkSize { request }, None)
        }
        State::Trailers { request } => match take_line(buffer) {
            Ok(field) if field.is_empty() => (State::Head, Some(Progress::Request(request))),
            Ok(_) => (State::Trailers { request }, None),
            Err(Some(refusal)) => refuse(refusal),
            Err(None) => need_more(State::Trailers { request }, Some(MALFORMED_CHUNKED)),
        },
    }
}

/// The request line and header fields of a complete head, and how its body is framed.
fn parse_head(head: &[u8]) -> Result<State, Refusal> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut parsed = httparse::Request::new(&mut fields);
    if !matches!(parsed.parse(head), Ok(httparse::Status::Complete(_))) {
        return Err(refuse_with(400, "bad request: unparsable request head"));
    }
    let request = Request {
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
    let codings = request.headers_named("transfer-encoding");
    if !codings.is_empty() {
        // A gateway streams a body of unknown length chunked (RFC 9112 §7.1); any other coding
        // is refused rather than mis-framed.
        if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            return Err(refuse_with(400, "bad request: unsupported transfer coding"));
        }
        return Ok(State::ChunkSize { request });
    }
    let length = match request.headers_named("content-length").as_slice() {
        [] => 0,
        [one] => match one.parse::<usize>() {
            Ok(length) if length <= MAX_BODY => length,
            Ok(_) => return Err(refuse_with(413, "request body too large")),
            Err(_) => return Err(refuse_with(400, "bad request: an invalid Content-Length")),
        },
        _ => {
            return Err(refuse_with(
                400,
                "bad request: more than one Content-Length",
            ));
        }
    };
    Ok(State::Body { request, length })
}

/// Takes one CRLF-terminated line (without the CRLF) off the front of `buffer`; `Err(None)` when
/// none is complete yet, `Err(Some(_))` when the line is longer than a head may be.
fn take_line(buffer: &mut Vec<u8>) -> Result<Vec<u8>, Option<Refusal>> {
    match find(buffer, b"\r\n") {
        Some(end) => {
            let line = buffer[..end].to_vec();
            buffer.drain(..end + 2);
            Ok(line)
        }
        None if buffer.len() > MAX_HEAD => Err(Some(MALFORMED_CHUNKED)),
        None => Err(None),
    }
}

/// The scheme and authority of an absolute-form request target (`https://host:port/path`).
pub fn absolute_form(target: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = ["https", "http"].into_iter().find_map(|scheme| {
        target
            .strip_prefix(scheme)
            .and_then(|rest| rest.strip_prefix("://"))
            .map(|rest| (scheme, rest))
    })?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some((scheme, &rest[..end]))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one request from `bytes` fed at once, and what is left of them.
    fn read(bytes: &[u8]) -> (Progress, Vec<u8>) {
        let mut buffer = bytes.to_vec();
        let progress = RequestReader::default().read(&mut buffer);
        (progress, buffer)
    }

    /// Reads one request from `bytes` fed a byte at a time, as a slow peer sends them.
    fn read_slowly(bytes: &[u8]) -> Progress {
        let mut reader = RequestReader::default();
        let mut buffer = Vec::new();
        let mut progress = reader.read(&mut buffer);
        for byte in bytes {
            buffer.push(*byte);
            progress = reader.read(&mut buffer);
            if !matches!(progress, Progress::NeedMore { .. }) {
                break;
            }
        }
        progress
    }

    fn request(progress: Progress) -> Request {
        match progress {
            Progress::Request(request) => request,
            other => panic!("not a whole request: {other:?}"),
        }
    }

    fn status(bytes: &[u8]) -> u16 {
        match read(bytes).0 {
            Progress::Refuse(refusal) => refusal.status,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_request_with_a_body_and_what_follows_it() {
        let bytes = b"POST /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabcGET";
        let (progress, left) = read(bytes);
        let parsed = request(progress);
        assert_eq!(parsed.method, "POST");
        assert_eq!(parsed.target, "/x");
        assert_eq!(parsed.header("host").as_deref(), Some("a.test"));
        assert_eq!(parsed.body, b"abc");
        assert_eq!(left, b"GET");
        assert_eq!(request(read_slowly(bytes)).body, b"abc");
    }

    #[test]
    fn absolute_form_is_split() {
        assert_eq!(
            absolute_form("https://c.test:4433/x?y"),
            Some(("https", "c.test:4433"))
        );
        assert_eq!(absolute_form("http://c.test"), Some(("http", "c.test")));
        assert_eq!(absolute_form("/x"), None);
    }

    #[test]
    fn a_request_needs_its_whole_head_and_body() {
        let quietly_closed = Progress::NeedMore { if_closed: None };
        assert_eq!(read(b"GET / HTTP/1.1\r\nHost: a").0, quietly_closed);
        assert_eq!(
            read(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab").0,
            quietly_closed
        );
    }

    #[test]
    fn chunked_bodies_are_joined_and_trailers_dropped() {
        let bytes = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\nnext";
        let (progress, left) = read(bytes);
        assert_eq!(request(progress).body, b"abcde");
        assert_eq!(left, b"next");
        assert_eq!(request(read_slowly(bytes)).body, b"abcde");
        let cut = &bytes[..bytes.len() - 10];
        assert_eq!(
            read(cut).0,
            Progress::NeedMore {
                if_closed: Some(MALFORMED_CHUNKED)
            }
        );
        assert_eq!(
            read(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").0,
            Progress::Refuse(MALFORMED_CHUNKED)
        );
        assert_eq!(
            read(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n").0,
            Progress::Refuse(MALFORMED_CHUNKED)
        );
    }

    #[test]
    fn what_is_held_stays_bounded_while_a_chunked_body_arrives() {
        // Many small chunks with long extensions: each line is consumed as it is read, so the
        // buffer never holds more than one line.
        let mut reader = RequestReader::default();
        let mut buffer = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let extension = "x".repeat(1000);
        for _ in 0..2000 {
            buffer.extend_from_slice(format!("1;{extension}\r\na\r\n").as_bytes());
            assert!(matches!(
                reader.read(&mut buffer),
                Progress::NeedMore { .. }
            ));
            assert!(buffer.is_empty());
        }
        buffer.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(request(reader.read(&mut buffer)).body.len(), 2000);
    }

    #[test]
    fn framing_that_cannot_be_trusted_is_refused() {
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
        let long_line = format!(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{}",
            "1".repeat(MAX_HEAD + 1)
        );
        assert_eq!(status(long_line.as_bytes()), 400);
    }
}
