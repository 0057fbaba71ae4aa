//! The HTTP/2 frames misdirect reads and writes beside the h2 crate, which drops every frame type
//! it does not know: the ORIGIN frame (RFC 8336). Sans-IO: a scanner that picks ORIGIN frames out
//! of a byte stream as it passes, a tracker that finds where the first frame of a stream ends (to
//! slip an ORIGIN frame in after the server's SETTINGS), and the frame codec, which also serves
//! the client's hand-written streams for requests the h2 crate refuses to send.

/// Frame type of ORIGIN (RFC 8336 §2).
pub const FRAME_ORIGIN: u8 = 0xc;
const HEADER: usize = 9;

/// One ORIGIN frame as received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OriginFrame {
    pub stream: u32,
    pub flags: u8,
    /// The ASCII-Origin fields, as sent (parse failures are kept out, RFC 8336 §2.2).
    pub origins: Vec<String>,
}

/// An ORIGIN frame on `stream` (0 is the only valid one, RFC 8336 §2.2) carrying `origins`.
pub fn origin_frame(stream: u32, origins: &[String]) -> Vec<u8> {
    frame(FRAME_ORIGIN, 0, stream, &origin_payload(origins))
}

/// The payload of an ORIGIN frame, the same over HTTP/2 and HTTP/3 (RFC 9412 §2): each origin
/// as a 16-bit length and its ASCII serialization (cut to what the length can say).
pub fn origin_payload(origins: &[String]) -> Vec<u8> {
    let mut payload = Vec::new();
    for origin in origins {
        let length = u16::try_from(origin.len()).unwrap_or(u16::MAX);
        payload.extend_from_slice(&length.to_be_bytes());
        payload.extend_from_slice(&origin.as_bytes()[..usize::from(length)]);
    }
    payload
}

/// One HTTP/2 frame (RFC 9113 §4.1); a payload beyond the 24-bit length is cut to fit.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(0xff_ffff)];
    let mut frame = Vec::with_capacity(HEADER + payload.len());
    let length = u32::try_from(payload.len()).unwrap_or(0).to_be_bytes();
    frame.extend_from_slice(&length[1..]);
    frame.push(kind);
    frame.push(flags);
    frame.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frame types and flags a hand-written client stream needs (RFC 9113 §6).
pub const FRAME_DATA: u8 = 0x0;
pub const FRAME_HEADERS: u8 = 0x1;
pub const FRAME_RST_STREAM: u8 = 0x3;
pub const FRAME_PING: u8 = 0x6;
pub const FRAME_WINDOW_UPDATE: u8 = 0x8;
pub const FRAME_CONTINUATION: u8 = 0x9;
pub const FLAG_END_STREAM: u8 = 0x1;
pub const FLAG_ACK: u8 = 0x1;
pub const FLAG_END_HEADERS: u8 = 0x4;
pub const FLAG_PADDED: u8 = 0x8;
pub const FLAG_PRIORITY: u8 = 0x20;

/// One whole frame at the start of `buffer`: type, flags, stream, payload, and the bytes it
/// takes; `None` until it is all in.
pub fn parse_frame(buffer: &[u8]) -> Option<(u8, u8, u32, &[u8], usize)> {
    let header = buffer.get(..HEADER)?;
    let length =
        usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
    let payload = buffer.get(HEADER..HEADER + length)?;
    Some((header[3], header[4], stream, payload, HEADER + length))
}

/// The field block fragment of a HEADERS frame's payload, without padding and priority.
pub fn header_block(flags: u8, payload: &[u8]) -> Option<&[u8]> {
    let (pad, payload) = if flags & FLAG_PADDED != 0 {
        (usize::from(*payload.first()?), &payload[1..])
    } else {
        (0, payload)
    };
    let payload = if flags & FLAG_PRIORITY != 0 {
        payload.get(5..)?
    } else {
        payload
    };
    payload.get(..payload.len().checked_sub(pad)?)
}

/// Picks ORIGIN frames out of the frames a peer sends, without holding on to other payloads.
#[derive(Debug, Default)]
pub struct FrameScanner {
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    remaining: usize,
    /// The current frame's header when it is an ORIGIN frame, and its payload so far.
    origin: Option<(u32, u8, Vec<u8>)>,
    frames: Vec<OriginFrame>,
    /// The error code of the last GOAWAY frame, once its first 8 payload bytes are in.
    goaway: Option<u32>,
    /// The current frame's payload so far when it is a GOAWAY (only its first 8 bytes).
    goaway_payload: Option<Vec<u8>>,
    /// The first bytes the peer sent, kept to say what it spoke when it was not HTTP/2.
    opening: Vec<u8>,
    /// The type of the peer's first frame, once its header is in.
    first_frame: Option<u8>,
    /// The current frame's payload so far when it is a SETTINGS frame (its first settings only).
    settings_payload: Option<Vec<u8>>,
    /// The last SETTINGS_MAX_CONCURRENT_STREAMS the peer announced.
    max_concurrent_streams: Option<u32>,
}

/// Most SETTINGS payload bytes read: 64 settings, far more than exist.
const MAX_SETTINGS_PAYLOAD: usize = 6 * 64;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// Frame type of SETTINGS, which must open a server's side of the connection (RFC 9113 §3.4).
pub const FRAME_SETTINGS: u8 = 0x4;
/// How many of the peer's first bytes are kept to describe what it spoke.
const OPENING: usize = 24;

pub const FRAME_GOAWAY: u8 = 0x7;

/// Largest ORIGIN payload kept, and most ORIGIN frames kept per connection; beyond them frames
/// are skipped (RFC 8336 §4 lets clients cap the state an Origin Set takes).
const MAX_ORIGIN_PAYLOAD: usize = 64 * 1024;
const MAX_ORIGIN_FRAMES: usize = 64;

impl FrameScanner {
    /// Feeds the next bytes of the peer's frame stream (after any connection preface).
    pub fn feed(&mut self, mut bytes: &[u8]) {
        let keep = OPENING.saturating_sub(self.opening.len()).min(bytes.len());
        self.opening.extend_from_slice(&bytes[..keep]);
        while !bytes.is_empty() {
            if self.remaining == 0 && self.header.len() < HEADER {
                let take = (HEADER - self.header.len()).min(bytes.len());
                self.header.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.header.len() < HEADER {
                    return;
                }
                let length = usize::from(self.header[0]) << 16
                    | usize::from(self.header[1]) << 8
                    | usize::from(self.header[2]);
                let kind = self.header[3];
                self.first_frame.get_or_insert(kind);
                let flags = self.header[4];
                let stream = u32::from_be_bytes([
                    self.header[5],
                    self.header[6],
                    self.header[7],
                    self.header[8],
                ]) & 0x7fff_ffff;
                self.header.clear();
                self.remaining = length;
                self.origin = (kind == FRAME_ORIGIN && length <= MAX_ORIGIN_PAYLOAD)
                    .then(|| (stream, flags, Vec::with_capacity(length)));
                self.goaway_payload = (kind == FRAME_GOAWAY).then(|| Vec::with_capacity(8));
                // A SETTINGS frame without ACK on stream 0 announces settings.
                self.settings_payload =
                    (kind == FRAME_SETTINGS && flags & 0x1 == 0 && stream == 0).then(Vec::new);
                if length == 0 {
                    self.finish_frame();
                }
                continue;
            }
            let take = self.remaining.min(bytes.len());
            if let Some((_, _, payload)) = &mut self.origin {
                payload.extend_from_slice(&bytes[..take]);
            }
            if let Some(payload) = &mut self.goaway_payload {
                let wanted = 8usize.saturating_sub(payload.len()).min(take);
                payload.extend_from_slice(&bytes[..wanted]);
            }
            if let Some(payload) = &mut self.settings_payload {
                let wanted = MAX_SETTINGS_PAYLOAD.saturating_sub(payload.len()).min(take);
                payload.extend_from_slice(&bytes[..wanted]);
            }
            self.remaining -= take;
            bytes = &bytes[take..];
            if self.remaining == 0 {
                self.finish_frame();
            }
        }
    }

    fn finish_frame(&mut self) {
        if let Some(payload) = self.settings_payload.take() {
            for setting in payload.chunks_exact(6) {
                if u16::from_be_bytes([setting[0], setting[1]]) == SETTINGS_MAX_CONCURRENT_STREAMS {
                    self.max_concurrent_streams = Some(u32::from_be_bytes([
                        setting[2], setting[3], setting[4], setting[5],
                    ]));
                }
            }
        }
        if let Some(payload) = self.goaway_payload.take()
            && let Some(code) = payload.get(4..8)
        {
            self.goaway = Some(u32::from_be_bytes([code[0], code[1], code[2], code[3]]));
        }
        if let Some((stream, flags, payload)) = self.origin.take()
            && self.frames.len() < MAX_ORIGIN_FRAMES
        {
            self.frames.push(OriginFrame {
                stream,
                flags,
                origins: parse_origins(&payload),
            });
        }
    }

    /// The ORIGIN frames seen so far.
    pub fn frames(&self) -> &[OriginFrame] {
        &self.frames
    }

    /// The error code of the last GOAWAY seen, if any: the h2 crate reports a connection the
    /// peer closed right after its GOAWAY as a broken pipe, which hides the code.
    pub fn goaway(&self) -> Option<u32> {
        self.goaway
    }

    /// The last SETTINGS_MAX_CONCURRENT_STREAMS the peer announced, if any: at 0 no request can
    /// be sent, and a client waits for a stream forever.
    pub fn max_concurrent_streams(&self) -> Option<u32> {
        self.max_concurrent_streams
    }

    /// How the peer broke the opening of an HTTP/2 connection, if it did: a server's first
    /// frame is SETTINGS (RFC 9113 §3.4). Says what it sent instead, for instance HTTP/1.1.
    pub fn preface_violation(&self) -> Option<String> {
        match self.first_frame {
            Some(FRAME_SETTINGS) => None,
            None if self.opening.len() < HEADER => None,
            _ => Some(format!(
                "its first frame is not SETTINGS; it began with \"{}\"",
                self.opening.escape_ascii()
            )),
        }
    }
}

/// The origins a connection's ORIGIN frames add to its Origin Set: frames on stream 0 without
/// any of the flags 0x1-0x8 (RFC 8336 §2.2: those make a frame ignored, others do not); `None`
/// when there is none, and the Origin Set is not in use.
pub fn origin_set(frames: &[OriginFrame]) -> Option<Vec<String>> {
    let mut valid = frames
        .iter()
        .filter(|frame| frame.stream == 0 && frame.flags & 0x0f == 0)
        .peekable();
    valid.peek()?;
    Some(
        valid
            .flat_map(|frame| frame.origins.iter().cloned())
            .collect(),
    )
}

/// The ASCII-Origin fields of an ORIGIN payload; a truncated field ends the list.
pub fn parse_origins(mut payload: &[u8]) -> Vec<String> {
    let mut origins = Vec::new();
    while payload.len() >= 2 {
        let length = usize::from(u16::from_be_bytes([payload[0], payload[1]]));
        let Some(field) = payload.get(2..2 + length) else {
            break;
        };
        if field.is_ascii() {
            origins.push(String::from_utf8_lossy(field).into_owned());
        }
        payload = &payload[2 + length..];
    }
    origins
}

/// Finds where the first frame of a stream ends, so that bytes can be slipped in after it.
#[derive(Debug, Default)]
pub struct FirstFrame {
    header: Vec<u8>,
    /// Bytes of the first frame still to pass, once its header is known.
    remaining: Option<usize>,
}

impl FirstFrame {
    /// How many of the next `available` bytes still belong to the first frame, given that the
    /// caller will pass exactly that many (or fewer, through [`FirstFrame::passed`]).
    pub fn within_first_frame(&self, next: &[u8]) -> usize {
        match self.remaining {
            Some(remaining) => remaining.min(next.len()),
            None => {
                // Until the header is complete, look ahead into `next` for its length.
                let mut header = self.header.clone();
                header.extend_from_slice(&next[..(HEADER - header.len()).min(next.len())]);
                if header.len() < HEADER {
                    return next.len();
                }
                let length = usize::from(header[0]) << 16
                    | usize::from(header[1]) << 8
                    | usize::from(header[2]);
                (HEADER - self.header.len() + length).min(next.len())
            }
        }
    }

    /// Records that `bytes` of the first frame went out; true once the whole frame has.
    pub fn passed(&mut self, bytes: &[u8]) -> bool {
        let mut bytes = bytes;
        if self.remaining.is_none() {
            let take = (HEADER - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.header.len() < HEADER {
                return false;
            }
            let length = usize::from(self.header[0]) << 16
                | usize::from(self.header[1]) << 8
                | usize::from(self.header[2]);
            self.remaining = Some(length);
        }
        let remaining = self.remaining.unwrap_or(0).saturating_sub(bytes.len());
        self.remaining = Some(remaining);
        remaining == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_parsed_once_it_is_all_in() {
        let bytes = frame(
            FRAME_HEADERS,
            FLAG_PADDED | FLAG_END_HEADERS,
            3,
            b"\x02abcXX",
        );
        assert_eq!(parse_frame(&bytes[..bytes.len() - 1]), None);
        let (kind, flags, stream, payload, used) = parse_frame(&bytes).unwrap();
        assert_eq!((kind, stream, used), (FRAME_HEADERS, 3, bytes.len()));
        assert_eq!(header_block(flags, payload), Some(&b"abc"[..]));
        assert_eq!(header_block(FLAG_PADDED, b"\x09ab"), None);
    }

    #[test]
    fn origin_frames_are_picked_out_byte_by_byte() {
        let origins = vec![
            "https://a.test:4433".to_owned(),
            "https://b.test:4433".to_owned(),
        ];
        let mut stream = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        stream.extend(origin_frame(0, &origins));
        stream.extend(frame(0x0, 1, 1, &[7; 40_000]));
        stream.extend(frame(FRAME_ORIGIN, 1, 3, &[0, 1, b'x']));
        let mut scanner = FrameScanner::default();
        for byte in &stream {
            scanner.feed(std::slice::from_ref(byte));
        }
        assert_eq!(scanner.frames().len(), 2);
        assert_eq!(scanner.preface_violation(), None);
        assert_eq!(scanner.frames()[0].origins, origins);
        assert_eq!(
            (scanner.frames()[1].stream, scanner.frames()[1].flags),
            (3, 1)
        );
    }

    #[test]
    fn the_stream_limit_is_read_from_settings() {
        let mut scanner = FrameScanner::default();
        scanner.feed(&frame(
            FRAME_SETTINGS,
            0,
            0,
            &[0, 3, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0],
        ));
        assert_eq!(scanner.max_concurrent_streams(), Some(0));
        scanner.feed(&frame(FRAME_SETTINGS, 0x1, 0, &[]));
        scanner.feed(&frame(FRAME_SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]));
        assert_eq!(scanner.max_concurrent_streams(), Some(100));
    }

    #[test]
    fn a_peer_that_does_not_open_with_settings_is_named() {
        let mut scanner = FrameScanner::default();
        scanner.feed(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        let violation = scanner.preface_violation().unwrap();
        assert!(
            violation.contains(r#"began with "HTTP/1.1 200 OK\r\ncontent""#),
            "{violation}"
        );
        let mut short = FrameScanner::default();
        short.feed(b"\0\0");
        assert_eq!(short.preface_violation(), None);
    }

    #[test]
    fn the_last_goaway_code_is_kept() {
        let mut stream = frame(0x4, 0, 0, &[]);
        stream.extend(frame(
            FRAME_GOAWAY,
            0,
            0,
            &[0, 0, 0, 1, 0, 0, 0, 1, b'd', b'e', b'b'],
        ));
        let mut scanner = FrameScanner::default();
        assert_eq!(scanner.goaway(), None);
        for byte in &stream {
            scanner.feed(std::slice::from_ref(byte));
        }
        assert_eq!(scanner.goaway(), Some(1));
    }

    #[test]
    fn truncated_fields_end_the_list() {
        assert_eq!(
            parse_origins(&[0, 1, b'a', 0, 9, b'b']),
            vec!["a".to_owned()]
        );
    }

    #[test]
    fn the_end_of_the_first_frame_is_found_across_writes() {
        let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        let mut tracker = FirstFrame::default();
        assert_eq!(tracker.within_first_frame(&settings[..4]), 4);
        assert!(!tracker.passed(&settings[..4]));
        let mut rest = settings[4..].to_vec();
        rest.extend(frame(0x8, 0, 0, &[0, 0, 0, 1]));
        let first = tracker.within_first_frame(&rest);
        assert_eq!(first, settings.len() - 4);
        assert!(tracker.passed(&rest[..first]));
    }
}
