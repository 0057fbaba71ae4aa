//! The parts of the HTTP/3 wire format that misdirect writes and reads itself, for what the h3
//! crate refuses to do (send a request whose `Host` differs from `:authority`, answer one):
//! QUIC variable-length integers (RFC 9000 §16), HTTP/3 frames (RFC 9114 §7) and a QPACK field
//! section codec that uses only the static table (RFC 9204; no dynamic table is ever enabled, so
//! none can be referenced). Sans-IO: bytes in, bytes out.

/// HTTP/3 frame types (RFC 9114 §7.2).
pub const FRAME_DATA: u64 = 0x0;
pub const FRAME_HEADERS: u64 = 0x1;
pub const FRAME_SETTINGS: u64 = 0x4;
pub const FRAME_GOAWAY: u64 = 0x7;
/// ORIGIN on the control stream (RFC 9412 §2).
pub const FRAME_ORIGIN: u64 = 0xc;
/// Unidirectional stream type of the control stream (RFC 9114 §6.2.1).
pub const STREAM_CONTROL: u64 = 0x0;
/// H3_MESSAGE_ERROR (RFC 9114 §8.1).
pub const H3_MESSAGE_ERROR: u64 = 0x10e;
/// H3_NO_ERROR.
pub const H3_NO_ERROR: u64 = 0x100;

/// Appends `value` as a QUIC variable-length integer.
pub fn put_varint(value: u64, out: &mut Vec<u8>) {
    match value {
        0..=0x3f => out.push(value as u8),
        0x40..=0x3fff => out.extend_from_slice(&((value as u16) | 0x4000).to_be_bytes()),
        0x4000..=0x3fff_ffff => {
            out.extend_from_slice(&((value as u32) | 0x8000_0000).to_be_bytes())
        }
        _ => out.extend_from_slice(
            &((value & 0x3fff_ffff_ffff_ffff) | 0xc000_0000_0000_0000).to_be_bytes(),
        ),
    }
}

/// Reads a QUIC variable-length integer: the value and the bytes it took, or `None` when `input`
/// ends first.
pub fn varint(input: &[u8]) -> Option<(u64, usize)> {
    let first = *input.first()?;
    let length = 1usize << (first >> 6);
    let bytes = input.get(..length)?;
    let mut value = u64::from(first & 0x3f);
    for byte in &bytes[1..] {
        value = (value << 8) | u64::from(*byte);
    }
    Some((value, length))
}

/// One frame: type, length, payload.
pub fn frame(kind: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 16);
    put_varint(kind, &mut out);
    put_varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// An ORIGIN frame (RFC 9412 §2) carrying `origins`, for the server's control stream.
pub fn origin_frame(origins: &[String]) -> Vec<u8> {
    frame(FRAME_ORIGIN, &super::h2::origin_payload(origins))
}

/// A complete frame at the start of `input`: its type, its payload and the bytes it took;
/// `None` while the frame is incomplete.
pub fn parse_frame(input: &[u8]) -> Option<(u64, &[u8], usize)> {
    let (kind, kind_length) = varint(input)?;
    let (length, length_length) = varint(&input[kind_length..])?;
    let start = kind_length + length_length;
    let end = start.checked_add(usize::try_from(length).ok()?)?;
    Some((kind, input.get(start..end)?, end))
}

/// A field section with every line a literal with a literal name (RFC 9204 §4.5.6), no Huffman
/// coding: what the harness sends, byte for byte as the scenario wrote it.
pub fn encode_field_section(fields: &[(String, String)]) -> Vec<u8> {
    // Required Insert Count 0 and Delta Base 0: no dynamic table.
    let mut out = vec![0, 0];
    for (name, value) in fields {
        put_prefixed(0x20, 3, name.len() as u64, &mut out);
        out.extend_from_slice(name.as_bytes());
        put_prefixed(0x00, 7, value.len() as u64, &mut out);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Why a field section could not be decoded by a static-table-only QPACK decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QpackError {
    #[error("{0} references the dynamic table")]
    DynamicTable(&'static str),
    #[error("static table index {0} does not exist")]
    NoStaticEntry(u64),
    #[error("a truncated {0}")]
    Truncated(&'static str),
    #[error("a {0} too long")]
    TooLong(&'static str),
    #[error("bad Huffman coding: {0}")]
    Huffman(String),
}

/// Decodes a field section that references only the static table.
pub fn decode_field_section(input: &[u8]) -> Result<Vec<(String, String)>, QpackError> {
    let mut at = 0;
    let (required_insert_count, used) = prefixed(input, 8)?;
    at += used;
    let (_, used) = prefixed(&input[at..], 7)?;
    at += used;
    if required_insert_count != 0 {
        return Err(QpackError::DynamicTable("the field section"));
    }
    let mut fields = Vec::new();
    while at < input.len() {
        let first = input[at];
        if first & 0x80 != 0 {
            // Indexed field line; T (0x40) set means the static table.
            if first & 0x40 == 0 {
                return Err(QpackError::DynamicTable("an indexed field line"));
            }
            let (index, used) = prefixed(&input[at..], 6)?;
            at += used;
            let (name, value) = static_entry(index)?;
            fields.push((name.to_owned(), value.to_owned()));
        } else if first & 0x40 != 0 {
            // Literal field line with name reference; T (0x10) set means the static table.
            if first & 0x10 == 0 {
                return Err(QpackError::DynamicTable("a field name"));
            }
            let (index, used) = prefixed(&input[at..], 4)?;
            at += used;
            let (name, _) = static_entry(index)?;
            let (value, used) = string(&input[at..], 7)?;
            at += used;
            fields.push((name.to_owned(), value));
        } else if first & 0x20 != 0 {
            // Literal field line with literal name: 001 N H, 3-bit name length prefix.
            let huffman_name = first & 0x08 != 0;
            let (length, used) = prefixed(&input[at..], 3)?;
            at += used;
            let end = at
                .checked_add(
                    usize::try_from(length).map_err(|_| QpackError::TooLong("field name"))?,
                )
                .filter(|end| *end <= input.len())
                .ok_or(QpackError::Truncated("field name"))?;
            let name = text(&input[at..end], huffman_name)?;
            at = end;
            let (value, used) = string(&input[at..], 7)?;
            at += used;
            fields.push((name, value));
        } else {
            return Err(QpackError::DynamicTable("a post-base field line"));
        }
    }
    Ok(fields)
}

include!("h3_static_table.rs");

fn static_entry(index: u64) -> Result<(&'static str, &'static str), QpackError> {
    usize::try_from(index)
        .ok()
        .and_then(|index| STATIC_TABLE.get(index))
        .copied()
        .ok_or(QpackError::NoStaticEntry(index))
}

/// An integer with an `bits`-bit prefix (RFC 7541 §5.1, as QPACK uses it).
fn prefixed(input: &[u8], bits: u32) -> Result<(u64, usize), QpackError> {
    let mask = (1u64 << bits) - 1;
    let first = *input.first().ok_or(QpackError::Truncated("integer"))?;
    let mut value = u64::from(first) & mask;
    if value < mask {
        return Ok((value, 1));
    }
    let mut shift = 0u32;
    for (index, byte) in input.iter().enumerate().skip(1) {
        if shift > 56 {
            return Err(QpackError::TooLong("integer"));
        }
        value += u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok((value, index + 1));
        }
    }
    Err(QpackError::Truncated("integer"))
}

fn put_prefixed(flags: u8, bits: u32, value: u64, out: &mut Vec<u8>) {
    let mask = (1u64 << bits) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// A string literal with an H bit above a `bits`-bit length prefix.
fn string(input: &[u8], bits: u32) -> Result<(String, usize), QpackError> {
    let huffman = input.first().ok_or(QpackError::Truncated("string"))? & (1 << bits) != 0;
    let (length, used) = prefixed(input, bits)?;
    let end = used
        .checked_add(usize::try_from(length).map_err(|_| QpackError::TooLong("string"))?)
        .filter(|end| *end <= input.len())
        .ok_or(QpackError::Truncated("string"))?;
    Ok((text(&input[used..end], huffman)?, end))
}

fn text(bytes: &[u8], huffman: bool) -> Result<String, QpackError> {
    let decoded = if huffman {
        loona_hpack::huffman::HuffmanDecoder::new()
            .decode(bytes)
            .map_err(|error| QpackError::Huffman(format!("{error:?}")))?
    } else {
        bytes.to_vec()
    };
    Ok(String::from_utf8_lossy(&decoded).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [0, 37, 63, 64, 15_293, 16_383, 16_384, 494_878_333, 1 << 40] {
            let mut out = Vec::new();
            put_varint(value, &mut out);
            assert_eq!(varint(&out), Some((value, out.len())), "{value}");
        }
        // RFC 9000 Appendix A.1 examples.
        assert_eq!(varint(&[0x7b, 0xbd]), Some((15_293, 2)));
        assert_eq!(varint(&[0x9d, 0x7f, 0x3e, 0x7d]), Some((494_878_333, 4)));
        assert_eq!(varint(&[0x7b]), None);
    }

    #[test]
    fn frames_are_parsed_only_when_complete() {
        let bytes = frame(FRAME_HEADERS, b"abc");
        assert_eq!(parse_frame(&bytes), Some((FRAME_HEADERS, &b"abc"[..], 5)));
        assert_eq!(parse_frame(&bytes[..4]), None);
    }

    #[test]
    fn field_sections_round_trip() {
        let fields = vec![
            (":method".to_owned(), "GET".to_owned()),
            (":authority".to_owned(), "a.test:4433".to_owned()),
            ("host".to_owned(), "b.test:4433".to_owned()),
            ("x-long".to_owned(), "v".repeat(300)),
        ];
        assert_eq!(
            decode_field_section(&encode_field_section(&fields)),
            Ok(fields)
        );
    }

    #[test]
    fn static_references_and_huffman_decode() {
        // :status 421 indexed (static 69), then content-type with a name reference (static 44)
        // and a Huffman-coded value "text/plain" (RFC 7541 Appendix C.4 style).
        let mut section = vec![0, 0, 0xc0 | 63, 69 - 63];
        section.push(0x50 | 0x0f);
        section.push(44 - 15);
        let huffman_text_plain = [0x49, 0x7c, 0xa5, 0x8a, 0xe8, 0x19, 0xaa];
        section.push(0x80 | huffman_text_plain.len() as u8);
        section.extend_from_slice(&huffman_text_plain);
        let fields = decode_field_section(&section).unwrap();
        assert_eq!(fields[0], (":status".to_owned(), "421".to_owned()));
        assert_eq!(
            fields[1],
            ("content-type".to_owned(), "text/plain".to_owned())
        );
    }

    #[test]
    fn dynamic_references_and_garbage_are_errors() {
        assert!(decode_field_section(&[1, 0]).is_err());
        assert!(decode_field_section(&[0, 0, 0x80]).is_err());
        assert!(decode_field_section(&[0, 0, 0xff]).is_err());
        assert!(decode_field_section(&[0, 0, 0x27, 0xff, 0xff]).is_err());
    }
}
