//! The requirements catalogue: every rule a scenario may cite, with its source, level and text.
//!
//! The catalogue is data (`requirements.yaml` beside this crate's manifest), compiled into the
//! binary so that the loader can reject a scenario that cites an ID nobody wrote down, reports can
//! quote the rule they judged by, and `misdirect list --requirements` can show what no scenario
//! cites yet, or why it cannot. Sections become links to the RFC Editor's HTML, so a finding leads to the text.

use std::sync::LazyLock;

use serde::Deserialize;

use crate::verdict::Level;

/// The catalogue as written, parsed on first use (a unit test proves it parses).
static CATALOGUE: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        requirements: Vec<Entry>,
    }
    let text = include_str!("../requirements.yaml");
    serde_saphyr::from_str::<File>(text)
        .map(|file| file.requirements)
        .unwrap_or_else(|error| panic!("requirements.yaml is part of the build: {error}"))
});

/// One rule of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// e.g. `R9110-7.4-b`: the RFC, the section, the rule's letter in that section.
    pub id: String,
    /// The catalogue's heading the rule sits under, e.g. `HTTP/2 connection reuse`.
    pub topic: String,
    /// Where the rule is written, e.g. `RFC 9110 §7.4`.
    pub section: String,
    /// The source's BCP 14 wording, which can combine keywords (`MUST / SHOULD`) or be
    /// descriptive; a scenario cites the one keyword it judges by.
    pub level: String,
    /// Who the rule binds: origin, gateway, client, cache, …
    pub roles: String,
    /// The rule's text, quoted verbatim and shortened with "…".
    pub text: String,
    /// Why misdirect cannot judge the rule at all (a target kind it does not play, a DNS lookup
    /// it cannot set up, a rule that only describes); such a rule is never cited.
    #[serde(default)]
    pub untestable: Option<String>,
}

/// Every entry, in the catalogue's order.
pub fn entries() -> &'static [Entry] {
    &CATALOGUE
}

impl Entry {
    /// The BCP 14 keywords the source's level names (`MUST / SHOULD`: both), in the order
    /// written; none for a descriptive rule.
    pub fn keywords(&self) -> Vec<Level> {
        let words: Vec<&str> = self
            .level
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|word| !word.is_empty())
            .collect();
        let mut keywords = Vec::new();
        let mut index = 0;
        while index < words.len() {
            let negated = words.get(index + 1) == Some(&"NOT");
            let keyword = match (words[index], negated) {
                ("MUST", true) => Some(Level::MustNot),
                ("MUST", false) => Some(Level::Must),
                ("SHOULD", true) => Some(Level::ShouldNot),
                ("SHOULD", false) => Some(Level::Should),
                ("MAY", _) => Some(Level::May),
                _ => None,
            };
            keywords.extend(keyword);
            index += if negated { 2 } else { 1 };
        }
        keywords
    }

    /// Whether citing the rule at `level` judges it as the source does: a keyword of the source
    /// with the same verdict when unmet (MUST and MUST NOT alike).
    pub fn judged_as_written(&self, level: Level) -> bool {
        self.keywords()
            .into_iter()
            .any(|keyword| keyword.verdict_when_unmet() == level.verdict_when_unmet())
    }
}

/// The entry with this ID.
pub fn find(id: &str) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|entry| entry.id == id)
}

/// The entries whose ID is closest to `id` (same RFC and section first), for "did you mean".
pub fn closest(id: &str) -> Option<&'static Entry> {
    let stem = |id: &str| {
        id.rsplit_once('-')
            .map_or(id.to_owned(), |(stem, _)| stem.to_owned())
    };
    let wanted = stem(id).to_ascii_uppercase();
    CATALOGUE
        .iter()
        .find(|entry| entry.id.eq_ignore_ascii_case(id))
        .or_else(|| {
            CATALOGUE
                .iter()
                .find(|entry| stem(&entry.id).to_ascii_uppercase() == wanted)
        })
}

/// A piece of a section citation: text, and where that text is published when it names an RFC
/// section or appendix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citation {
    pub text: String,
    pub url: Option<String>,
}

/// Splits a citation such as `RFC 9110 §7.4, §15.5.20, RFC 9113 §9.1.1` into its pieces, each
/// section linked to `https://www.rfc-editor.org/rfc/rfcN#section-X` (appendices to
/// `#appendix-X`); a `§` with no RFC before it, or any other text, stays unlinked.
pub fn citations(section: &str) -> Vec<Citation> {
    let mut rfc: Option<&str> = None;
    section
        .split([',', ';'])
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let mut rest = piece;
            if let Some(after) = piece.strip_prefix("RFC ") {
                let number_end = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                rfc = Some(&after[..number_end]).filter(|number| !number.is_empty());
                rest = after[number_end..].trim();
            } else if !piece.starts_with('§') && !piece.starts_with("Appendix ") {
                rfc = None;
            }
            let anchor = rest
                .strip_prefix('§')
                .map(|section| ("section", section))
                .or_else(|| {
                    rest.strip_prefix("Appendix ")
                        .map(|appendix| ("appendix", appendix))
                })
                .map(|(kind, number)| (kind, number.split_whitespace().next().unwrap_or("")))
                .filter(|(_, number)| !number.is_empty());
            let url = match (rfc, anchor) {
                (Some(rfc), Some((kind, number))) => Some(format!(
                    "https://www.rfc-editor.org/rfc/rfc{rfc}#{kind}-{number}"
                )),
                (Some(rfc), None) if rest.is_empty() => {
                    Some(format!("https://www.rfc-editor.org/rfc/rfc{rfc}"))
                }
                _ => None,
            };
            Citation {
                text: piece.to_owned(),
                url,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_parses_with_unique_ids_and_a_level_each() {
        let entries = entries();
        assert!(entries.len() >= 80, "{} entries", entries.len());
        for (index, entry) in entries.iter().enumerate() {
            assert!(
                !entries[..index].iter().any(|other| other.id == entry.id),
                "{} listed twice",
                entry.id
            );
            for field in [&entry.section, &entry.level, &entry.roles, &entry.text] {
                assert!(!field.trim().is_empty(), "{} has an empty field", entry.id);
            }
        }
        assert_eq!(
            find("R9110-7.4-b").map(|entry| entry.level.as_str()),
            Some("MUST")
        );
        assert!(find("R9110-7.4-z").is_none());
    }

    #[test]
    fn levels_are_read_as_keywords() {
        let keywords = |id: &str| find(id).map(Entry::keywords).unwrap_or_default();
        assert_eq!(keywords("R9110-7.4-b"), [Level::Must]);
        assert_eq!(keywords("R6066-3-a"), [Level::MustNot]);
        assert_eq!(keywords("R8446-4.6.1-a"), [Level::Must, Level::Should]);
        assert_eq!(keywords("R9110-7.4-c"), []);
        let entry = find("R9114-3.1-a").expect("listed");
        assert!(entry.judged_as_written(Level::Must));
        assert!(!entry.judged_as_written(Level::Should));
    }

    #[test]
    fn the_closest_entry_shares_the_section_or_differs_in_case() {
        assert_eq!(
            closest("r9110-7.4-b").map(|e| e.id.as_str()),
            Some("R9110-7.4-b")
        );
        assert!(closest("R9110-7.4-z").is_some_and(|e| e.id.starts_with("R9110-7.4-")));
        assert!(closest("R1-1-a").is_none());
    }

    #[test]
    fn sections_link_to_the_rfc_editor() {
        let urls = |section: &str| -> Vec<Option<String>> {
            citations(section)
                .into_iter()
                .map(|piece| piece.url)
                .collect()
        };
        assert_eq!(
            urls("RFC 9110 §7.4, §15.5.20, RFC 9113 §9.1.1"),
            [
                Some("https://www.rfc-editor.org/rfc/rfc9110#section-7.4".to_owned()),
                Some("https://www.rfc-editor.org/rfc/rfc9110#section-15.5.20".to_owned()),
                Some("https://www.rfc-editor.org/rfc/rfc9113#section-9.1.1".to_owned()),
            ]
        );
        assert_eq!(
            urls("RFC 9110 Appendix B.3, RFC 9111 §3"),
            [
                Some("https://www.rfc-editor.org/rfc/rfc9110#appendix-B.3".to_owned()),
                Some("https://www.rfc-editor.org/rfc/rfc9111#section-3".to_owned()),
            ]
        );
        assert_eq!(
            urls("WHATWG Fetch, HTTP-network-or-cache fetch; RFC 9110 §15.5.20"),
            [
                None,
                None,
                Some("https://www.rfc-editor.org/rfc/rfc9110#section-15.5.20".to_owned()),
            ]
        );
        assert_eq!(citations("RFC 8336 §2.4, §2.3 note")[1].text, "§2.3 note");
    }
}
