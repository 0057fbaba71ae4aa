//! misdirect's core: everything the harness knows about 421 Misdirected Request and connection
//! reuse that does not touch the world. It models scenarios, judges observations, renders
//! reports, decides the embedded reference target's answers and encodes the wire pieces the
//! protocol crates will not, all as pure functions over plain data, the way quinn-proto and
//! rustls keep their state machines apart from sockets.
//!
//! The crate cannot name an async runtime, TLS, QUIC or HTTP/2 or HTTP/3 stack (tokio, rustls,
//! quinn, h2, h3, hyper), only parsers such as httparse: its dependencies say so, and the
//! shell's `tests/shape.rs` fails if one creeps in. Of its modules, only the loaders
//! (`scenario::load_paths`, `scenario::read_yaml`, `baseline::load`) read files.
//!
//! Modules, bottom first (each imports only modules above it in this list):
//! - [`verdict`], [`protocol`], [`fault`], [`origin_script`], [`deployment`], [`wire`]: vocabulary
//!   and codecs; [`lenient`]: how faulty parsers read what the HTTP/2 crate rejects;
//!   [`partition`]: shards of a run for CI matrices; [`catalogue`]: the rules a scenario may
//!   cite;
//! - [`observe`]: what was seen, as plain data;
//! - [`check`]: the checks, one family per file, each declared once and judged beside its
//!   declaration;
//! - [`scenario`]: the scenario model and its YAML loader; [`schema`]: JSON Schemas of the
//!   files people write, from the same declarations;
//! - [`outcome`]: case results and the tally; [`evaluate`]: a case's observations → its verdict;
//!   [`conclude`]: how a case ends, from how its run ended;
//! - [`policy`]: the reference target's decisions;
//! - [`baseline`]: a server's known deviations; [`report`]: the renderers; [`soak`]: what a
//!   soak under load counts and how it is judged; [`audit`]: what an audit of a live edge asks
//!   and how it judges the answers.

pub mod audit;
pub mod baseline;
pub mod catalogue;
pub mod check;
pub mod conclude;
pub mod deployment;
pub mod evaluate;
pub mod fault;
pub mod lenient;
pub mod observe;
pub mod origin_script;
pub mod outcome;
pub mod partition;
pub mod policy;
pub mod protocol;
pub mod report;
pub mod scenario;
pub mod schema;
pub mod soak;
pub mod verdict;
pub mod wire;
