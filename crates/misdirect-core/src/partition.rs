//! Partitions of a run, for spreading it over the jobs of a CI matrix: `hash:M/N` keeps the
//! cases whose ID hashes to shard M of N (stable whatever else is selected, so a case stays in
//! its shard as suites grow), `count:M/N` deals the selected cases out in turn (even shards).
//! The N partitions of one selection are disjoint and together hold every case.

use std::fmt;
use std::str::FromStr;

/// One shard of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub by: By,
    /// 1-based.
    pub shard: u32,
    pub of: u32,
}

/// How cases are dealt out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Hash,
    Count,
}

impl Partition {
    /// Whether the case `id`, the `index`-th of the selection, belongs to this shard.
    pub fn keeps(&self, index: usize, id: &str) -> bool {
        let slot = match self.by {
            By::Hash => fnv1a(id.as_bytes()) % u64::from(self.of),
            By::Count => u64::try_from(index).unwrap_or(u64::MAX) % u64::from(self.of),
        };
        slot + 1 == u64::from(self.shard)
    }
}

/// FNV-1a, 64 bits: fixed by its definition, so shards do not move between versions or hosts.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A partition that is not `hash:M/N` or `count:M/N` with 1 ≤ M ≤ N ≤ 1024.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is no partition: write hash:M/N or count:M/N, with 1 <= M <= N <= 1024")]
pub struct BadPartition(String);

impl FromStr for Partition {
    type Err = BadPartition;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadPartition(text.to_owned());
        let (by, rest) = text.split_once(':').ok_or_else(bad)?;
        let by = match by {
            "hash" => By::Hash,
            "count" => By::Count,
            _ => return Err(bad()),
        };
        let (shard, of) = rest.split_once('/').ok_or_else(bad)?;
        let shard: u32 = shard.parse().map_err(|_| bad())?;
        let of: u32 = of.parse().map_err(|_| bad())?;
        if shard == 0 || shard > of || of > 1024 {
            return Err(bad());
        }
        Ok(Self { by, shard, of })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = match self.by {
            By::Hash => "hash",
            By::Count => "count",
        };
        write!(f, "{by}:{}/{}", self.shard, self.of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_complete() {
        let ids: Vec<String> = (0..200)
            .map(|index| format!("server/s{index} [h2]"))
            .collect();
        for by in ["hash", "count"] {
            let mut seen = vec![0; ids.len()];
            for shard in 1..=3 {
                let partition: Partition = format!("{by}:{shard}/3").parse().unwrap();
                for (index, id) in ids.iter().enumerate() {
                    if partition.keeps(index, id) {
                        seen[index] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|count| *count == 1), "{by}");
        }
    }

    #[test]
    fn only_well_formed_partitions_parse() {
        assert_eq!(
            "hash:2/4".parse::<Partition>().unwrap().to_string(),
            "hash:2/4"
        );
        for bad in [
            "hash:0/4",
            "hash:5/4",
            "count:1/0",
            "mod:1/2",
            "hash:1",
            "count:1/2000",
        ] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
    }
}
