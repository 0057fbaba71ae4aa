//! The wire pieces misdirect writes and reads itself, because the protocol crates will not: the
//! HTTP/1.1 request reader that the embedded target and the mock upstreams share ([`h1`]), the
//! HTTP/2 ORIGIN frame ([`h2`]), and HTTP/3 frames with static-only QPACK ([`h3`]). Pure codecs
//! over byte slices; the shell owns the sockets.

pub mod h1;
pub mod h2;
pub mod h3;
