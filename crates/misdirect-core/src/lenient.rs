//! The lenient request parsers some faults put in front of the embedded target's HTTP/2 shell.
//!
//! The h2 crate rejects a request whose `:authority` is empty, repeated or no URI authority,
//! before the policy sees it, which is the reference behaviour. A fault that accepts such a
//! request has to act before the crate: the shell rewrites the request's field block as the
//! faulty parser reads it, and the crate then carries the result to the policy. What the
//! rewriting does is decided here, per fault, over plain fields.

use crate::fault::Fault;

/// The field that carries the last of several `:authority` fields to the policy, for the
/// fault that checks the first and routes by the last; no client sends it.
pub const ROUTED_AUTHORITY: &str = "x-misdirect-routed-authority";

/// The faults whose parser reads a field block differently from the h2 crate.
pub const FAULTS: &[Fault] = &[
    Fault::MissingHostDefault,
    Fault::AuthorityPrefixMatch,
    Fault::SplitAuthority,
];

/// An authority as a parser reads it that cuts at the first `/`, `?`, `#` or space, as one does
/// that joins the authority and the path into one URI and splits it again
/// ([`Fault::AuthorityPrefixMatch`]).
pub fn up_to_delimiter(authority: &str) -> &str {
    authority
        .find(['/', '?', '#', ' '])
        .map_or(authority, |end| &authority[..end])
}

/// The fields of one request as the parser of `fault` hands them on; `None` when it reads them
/// as they are.
pub fn read(fault: Fault, fields: &[(String, String)]) -> Option<Vec<(String, String)>> {
    let authorities: Vec<&str> = fields
        .iter()
        .filter(|(name, _)| name == ":authority")
        .map(|(_, value)| value.as_str())
        .collect();
    let mut read: Vec<(String, String)> = match fault {
        // An empty authority is read as none at all.
        Fault::MissingHostDefault if authorities.iter().any(|value| value.is_empty()) => fields
            .iter()
            .filter(|(name, value)| !(name == ":authority" && value.is_empty()))
            .cloned()
            .collect(),
        // The authority ends at the first delimiter.
        Fault::AuthorityPrefixMatch => fields
            .iter()
            .map(|(name, value)| match name.as_str() {
                ":authority" => (name.clone(), up_to_delimiter(value).to_owned()),
                _ => (name.clone(), value.clone()),
            })
            .collect(),
        // The first authority stays, the last one routes.
        Fault::SplitAuthority if authorities.len() > 1 => {
            let last = authorities.last().map(|value| (*value).to_owned());
            let mut seen = false;
            let mut kept: Vec<(String, String)> = fields
                .iter()
                .filter(|(name, _)| {
                    let repeated = name == ":authority" && seen;
                    seen |= name == ":authority";
                    !repeated
                })
                .cloned()
                .collect();
            kept.extend(last.map(|value| (ROUTED_AUTHORITY.to_owned(), value)));
            kept
        }
        _ => return None,
    };
    // Regular fields follow every pseudo-field (RFC 9113 §8.3).
    read.sort_by_key(|(name, _)| !name.starts_with(':'));
    (read != fields).then_some(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn each_fault_reads_only_what_the_crate_rejects() {
        let plain = fields(&[(":method", "GET"), (":authority", "a.test"), (":path", "/")]);
        for fault in FAULTS {
            assert_eq!(read(*fault, &plain), None, "{fault}");
        }
        let empty = fields(&[(":authority", ""), (":path", "/")]);
        assert_eq!(
            read(Fault::MissingHostDefault, &empty),
            Some(fields(&[(":path", "/")]))
        );
        let delimited = fields(&[(":authority", "a.test:4433/x"), (":path", "/")]);
        assert_eq!(
            read(Fault::AuthorityPrefixMatch, &delimited),
            Some(fields(&[(":authority", "a.test:4433"), (":path", "/")]))
        );
        let twice = fields(&[
            (":authority", "a.test"),
            (":authority", "c.test"),
            (":path", "/"),
            ("x-a", "1"),
        ]);
        assert_eq!(
            read(Fault::SplitAuthority, &twice),
            Some(fields(&[
                (":authority", "a.test"),
                (":path", "/"),
                ("x-a", "1"),
                (ROUTED_AUTHORITY, "c.test"),
            ]))
        );
    }
}
