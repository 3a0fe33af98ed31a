//! The core must stay sans-IO: no clock, files, sockets, threads, async runtime, randomness or
//! global state. `#![no_std]` already makes most of that impossible; this test reads the crate's
//! sources and manifest and fails if any of it creeps in (for example through a dependency or a
//! `extern crate std`).

use std::fs;
use std::path::{Path, PathBuf};

const FORBIDDEN_IN_CODE: [&str; 9] = [
    "std::time",
    "std::fs",
    "std::net",
    "std::thread",
    "std::env",
    "tokio",
    "rand::",
    "extern crate std",
    "thread_local!",
];

/// The only dependencies the core may have (at its boundary: error derive and optional serde).
const ALLOWED_DEPENDENCIES: [&str; 2] = ["thiserror", "serde"];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
    {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a line without its `//` comment (doc comments may name what is forbidden).
fn code_of(line: &str) -> &str {
    line.find("//").map_or(line, |at| &line[..at])
}

fn words(code: &str) -> impl Iterator<Item = &str> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
}

/// Finds every violation in one source file's text.
fn violations(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (number, line) in source.lines().enumerate() {
        let code = code_of(line);
        for needle in FORBIDDEN_IN_CODE {
            if code.contains(needle) {
                found.push(format!(
                    "line {}: `{needle}` in `{}`",
                    number + 1,
                    line.trim()
                ));
            }
        }
        if words(code).any(|w| w == "rand") {
            found.push(format!("line {}: `rand` in `{}`", number + 1, line.trim()));
        }
        let trimmed = code.trim_start();
        let global = ["static ", "pub static ", "pub(crate) static "]
            .iter()
            .any(|p| trimmed.starts_with(p));
        if global {
            found.push(format!(
                "line {}: global `static` in `{}`",
                number + 1,
                line.trim()
            ));
        }
    }
    found
}

#[test]
fn sources_use_no_clock_io_threads_randomness_or_globals() {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    assert!(
        files.len() >= 5,
        "expected the crate's sources, found {files:?}"
    );
    let mut all = Vec::new();
    for file in &files {
        let source = fs::read_to_string(file).expect("source is UTF-8");
        for v in violations(&source) {
            all.push(format!("{}: {v}", file.display()));
        }
    }
    assert!(
        all.is_empty(),
        "the pump core must stay sans-IO:\n{}",
        all.join("\n")
    );
}

#[test]
fn the_crate_is_no_std() {
    let lib = fs::read_to_string(crate_dir().join("src/lib.rs")).expect("lib.rs");
    assert!(
        lib.lines().any(|l| l.trim() == "#![no_std]"),
        "src/lib.rs must declare #![no_std]"
    );
}

#[test]
fn manifest_has_only_allowed_dependencies() {
    let manifest = fs::read_to_string(crate_dir().join("Cargo.toml")).expect("Cargo.toml");
    let mut section = String::new();
    let mut dependencies = Vec::new();
    for line in manifest.lines() {
        let line = code_of(line.split('#').next().unwrap_or("")).trim();
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_string();
            continue;
        }
        if section == "dependencies"
            && let Some((name, _)) = line.split_once('=')
        {
            dependencies.push(name.trim().to_string());
        }
        for banned in ["tokio", "rand", "std"] {
            let named = line
                .split_once('=')
                .is_some_and(|(name, _)| name.trim() == banned);
            assert!(!named, "Cargo.toml [{section}] names `{banned}`");
        }
    }
    for name in &dependencies {
        assert!(
            ALLOWED_DEPENDENCIES.contains(&name.as_str()),
            "dependency `{name}` is not allowed in the pump core (allowed: {ALLOWED_DEPENDENCIES:?})"
        );
    }
}

#[test]
fn the_checker_itself_catches_each_forbidden_thing() {
    // Guards against a checker that can never fail.
    let samples = [
        "use std::time::Instant;",
        "let f = std::fs::read(\"x\");",
        "use std::net::TcpStream;",
        "std::thread::sleep(d);",
        "let r = rand::random::<u8>();",
        "use rand;",
        "tokio::spawn(f);",
        "static mut COUNTER: u32 = 0;",
        "extern crate std;",
    ];
    for sample in samples {
        assert!(!violations(sample).is_empty(), "not caught: {sample}");
    }
    assert!(
        violations("// we never use std::time here").is_empty(),
        "comments are allowed to name things"
    );
    assert!(
        violations("let random_ish = operand;").is_empty(),
        "`rand` must match as a word"
    );
}
