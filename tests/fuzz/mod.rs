//! Fuzz trials of the three loaders a user feeds files to: scenarios, target profiles and
//! baselines. Each trial mutates files of the corpus (the project's own suites, profiles and
//! baselines, and the hand-made seeds in `fuzz/corpus/`) with flipped bits, cut and repeated
//! spans and YAML tokens, writes the result to a file and loads it. Whatever the bytes, a loader
//! must return within a second, without panicking, and an error must point inside the file.
//!
//! `cargo test` runs a fixed, seeded sample of `MISDIRECT_FUZZ_CASES` inputs per loader (2,000 by
//! default); set the variable higher for a longer hunt, which then also draws a fresh seed:
//! `MISDIRECT_FUZZ_CASES=200000 cargo test --test suites -- fuzz::`. proptest shrinks a failure
//! to the fewest mutations that still fail and prints them with the text.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use misdirect_core::scenario::LoadError;

/// Inputs per loader when the variable does not say.
const DEFAULT_CASES: u32 = 2000;
/// The longest one load may take.
const WITHIN: Duration = Duration::from_secs(1);

/// Bytes that mean something to a YAML parser, or to misdirect's loaders.
const TOKENS: &[&[u8]] = &[
    b": ",
    b"- ",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"&a ",
    b"*a",
    b"!tag ",
    b"!!str ",
    b"\"",
    b"'",
    b"\n",
    b"  ",
    b"\t",
    b"#",
    b"|\n",
    b">-\n",
    b"? ",
    b"<<: *a\n",
    b"---\n",
    b"...\n",
    b"~",
    b"null",
    b"true",
    b"yes",
    b"0x1f",
    b"-1",
    b"99999999999999999999",
    b"1e400",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\0",
    b"\\u0000",
    b"R9110-7.4-b",
    b"primary",
    b"h3",
    b"{port}",
    b"{var:x}",
    b"{upstream:alpha}",
];

/// One change to a file's bytes; positions wrap around its length.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    Cut {
        at: usize,
        length: usize,
    },
    Repeat {
        at: usize,
        length: usize,
        times: usize,
    },
    Token {
        at: usize,
        token: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), 1usize..64).prop_map(|(at, length)| Mutation::Cut { at, length }),
        (any::<usize>(), 1usize..64, 2usize..64)
            .prop_map(|(at, length, times)| { Mutation::Repeat { at, length, times } }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Token { at, token }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let place = |at: usize, length: usize| if length == 0 { 0 } else { at % (length + 1) };
    match *mutation {
        Mutation::Flip { at, bit } if !bytes.is_empty() => {
            let at = at % bytes.len();
            bytes[at] ^= 1 << bit;
        }
        Mutation::Flip { .. } => {}
        Mutation::Cut { at, length } => {
            let at = place(at, bytes.len());
            let end = (at + length).min(bytes.len());
            bytes.drain(at..end);
        }
        Mutation::Repeat { at, length, times } => {
            let at = place(at, bytes.len());
            let span = bytes[at..(at + length).min(bytes.len())].to_vec();
            for _ in 1..times {
                bytes.splice(at..at, span.iter().copied());
            }
        }
        Mutation::Token { at, token } => {
            let at = place(at, bytes.len());
            bytes.splice(at..at, TOKENS[token].iter().copied());
        }
    }
}

/// One loader under fuzz: where its corpus is, and how it loads a file.
struct Target {
    name: &'static str,
    corpus: fn(&Path) -> Vec<PathBuf>,
    load: fn(&Path) -> Result<(), LoadError>,
}

pub(crate) fn trials() -> Vec<Trial> {
    let targets = [
        Target {
            name: "scenario-loader",
            corpus: |root| {
                let mut files = yaml_below(&root.join("suites"));
                files.extend(yaml_below(&root.join("fuzz/corpus/scenario")));
                files
            },
            load: |path| misdirect_core::scenario::load_file(path).map(drop),
        },
        Target {
            name: "profile-loader",
            corpus: |root| {
                let mut files: Vec<PathBuf> = yaml_below(&root.join("targets"))
                    .into_iter()
                    .filter(|path| !path.to_string_lossy().ends_with(".baseline.yaml"))
                    .collect();
                files.extend(yaml_below(&root.join("fuzz/corpus/profile")));
                files
            },
            load: |path| misdirect::under_test::profile::load(path).map(drop),
        },
        Target {
            name: "baseline-loader",
            corpus: |root| {
                let mut files: Vec<PathBuf> = yaml_below(&root.join("targets"))
                    .into_iter()
                    .filter(|path| path.to_string_lossy().ends_with(".baseline.yaml"))
                    .collect();
                files.extend(yaml_below(&root.join("fuzz/corpus/baseline")));
                files
            },
            load: |path| misdirect_core::baseline::load(path).map(drop),
        },
    ];
    targets
        .into_iter()
        .map(|target| Trial::test(format!("fuzz::{}", target.name), move || fuzz(&target)))
        .collect()
}

fn fuzz(target: &Target) -> Result<(), Failed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds: Vec<Vec<u8>> = (target.corpus)(root)
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()
        .map_err(|error| format!("cannot read the corpus: {error}"))?;
    if seeds.is_empty() {
        return Err("the corpus is empty".into());
    }
    // A folder with the profiles' templates beside the file, so that mutated profiles get past
    // their `launch.config` and into the rest of the loader.
    let dir = std::env::temp_dir().join(format!(
        "misdirect-fuzz-{}-{}",
        std::process::id(),
        target.name
    ));
    std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
    for template in std::fs::read_dir(root.join("targets")).map_err(|error| error.to_string())? {
        let template = template.map_err(|error| error.to_string())?.path();
        if template
            .extension()
            .is_some_and(|extension| extension == "template")
        {
            let name = template.file_name().unwrap_or_default();
            std::fs::copy(&template, dir.join(name)).map_err(|error| error.to_string())?;
        }
    }
    let requested = std::env::var("MISDIRECT_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok());
    let config = Config {
        cases: requested.unwrap_or(DEFAULT_CASES),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = match requested {
        Some(_) => TestRunner::new(config),
        None => TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha)),
    };
    let file = dir.join("fuzzed.yaml");
    let strategy = (0..seeds.len(), proptest::collection::vec(mutation(), 1..8));
    let outcome = runner.run(&strategy, |(seed, mutations)| {
        let mut bytes = seeds[seed].clone();
        for mutation in &mutations {
            apply(&mut bytes, mutation);
        }
        std::fs::write(&file, &bytes).map_err(|error| TestCaseError::fail(error.to_string()))?;
        let started = Instant::now();
        let loaded = (target.load)(&file);
        let took = started.elapsed();
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(took < WITHIN, "took {took:?} on:\n{text}");
        if let Err(error) = loaded {
            prop_assert!(!error.message.is_empty(), "an empty message on:\n{text}");
            if let Some(span) = &error.span
                && error.path == file
            {
                // Lines as YAML counts them: a lone CR breaks a line too.
                let lines = misdirect_core::scenario::Source::new(&file, text.as_ref())
                    .line_count()
                    .max(1);
                prop_assert!(
                    usize::try_from(span.line).unwrap_or(usize::MAX) <= lines + 1,
                    "line {} of a {lines}-line file: {error}\n{text}",
                    span.line
                );
            }
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    outcome.map_err(|error| Failed::from(error.to_string()))
}

fn yaml_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(yaml_below(&path));
        } else if path
            .extension()
            .is_some_and(|extension| extension == "yaml")
        {
            files.push(path);
        }
    }
    files.sort();
    files
}
