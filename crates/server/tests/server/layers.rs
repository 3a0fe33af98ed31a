//! The server's layers, checked from the sources: dependencies point one way (`http` → `services` → `domain`,
//! `store`, `journal`), SQL lives only in `store`, axum only in `http` (and the composition root), and `domain`
//! is sans-IO like the pump core: no clock, no I/O, no tasks, no database, no HTTP.

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its text, comments removed (a comment may name anything).
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("the source directory reads") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file reads");
                out.push((path, strip_comments(&text)));
            }
        }
    }
    out.sort();
    out
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The test module of a layer may use what it tests with; only the code itself is checked.
fn without_tests(path: &Path, text: &str) -> Option<String> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return None;
    }
    Some(match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    })
}

/// Fails naming every file of `layer` that contains one of `forbidden`.
fn check(layer: &str, forbidden: &[&str]) {
    let dir = src().join(layer);
    let files: Vec<(PathBuf, String)> = if dir.is_dir() {
        sources(&dir)
    } else {
        let path = src().join(format!("{layer}.rs"));
        let text = std::fs::read_to_string(&path).expect("the layer's file reads");
        vec![(path, strip_comments(&text))]
    };
    assert!(!files.is_empty(), "no sources found for {layer}");
    let mut found = Vec::new();
    for (path, text) in &files {
        let Some(code) = without_tests(path, text) else {
            continue;
        };
        for needle in forbidden {
            if code.contains(needle) {
                found.push(format!("{} uses {needle:?}", path.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "layer {layer} breaks its rules:\n{}",
        found.join("\n")
    );
}

#[test]
fn domain_is_sans_io() {
    check(
        "domain",
        &[
            "axum",
            "sqlx",
            "tokio",
            "hyper",
            "std::time::Instant",
            "SystemTime",
            "Timestamp::now",
            "Zoned::now",
            "Instant::now",
            "std::fs",
            "std::net",
            "std::thread",
            "std::env",
            "getrandom",
            "crate::services",
            "crate::store",
            "crate::http",
            "crate::journal",
            "crate::AppState",
            "crate::config",
            "crate::demo",
            "println!",
            "eprintln!",
        ],
    );
}

#[test]
fn store_is_below_services_and_http() {
    check(
        "store",
        &[
            "crate::services",
            "crate::http",
            "crate::journal",
            "crate::AppState",
            "axum",
            "crate::demo",
        ],
    );
}

#[test]
fn journal_is_below_services_and_http() {
    check(
        "journal",
        &[
            "crate::services",
            "crate::http",
            "crate::store",
            "crate::AppState",
            "axum",
            "sqlx",
            "crate::demo",
        ],
    );
}

#[test]
fn services_know_neither_http_nor_sql() {
    check(
        "services",
        &["crate::http", "crate::mllp", "axum", "sqlx", "crate::demo"],
    );
}

#[test]
fn mllp_is_a_transport_beside_http_that_reaches_data_only_through_services() {
    check(
        "mllp",
        &[
            "sqlx",
            "axum",
            "crate::http",
            "crate::store",
            "crate::journal",
            ".journal.",
            "state.db",
            ".db.pool",
            "crate::demo",
            "crate::domain",
        ],
    );
}

#[test]
fn http_reaches_data_only_through_services() {
    check(
        "http",
        &[
            "sqlx",
            "crate::store",
            "crate::journal",
            ".journal.",
            "state.db",
            ".db.pool",
            "crate::demo",
        ],
    );
}

#[test]
fn leaves_depend_on_no_layer() {
    for leaf in ["config", "error", "ids"] {
        check(
            leaf,
            &[
                "crate::services",
                "crate::http",
                "crate::store",
                "crate::journal",
                "crate::domain",
                "axum",
                "sqlx",
            ],
        );
    }
}

#[test]
fn sql_is_written_only_in_store() {
    let mut found = Vec::new();
    for (path, text) in sources(&src()) {
        let in_store = path.starts_with(src().join("store"));
        if !in_store && (text.contains("sqlx::query") || text.contains("sqlx::raw_sql")) {
            found.push(path.display().to_string());
        }
    }
    assert!(found.is_empty(), "SQL outside store/: {found:?}");
}

/// The module path of a source file (`services::alarms`; the crate root is "").
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("under src/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// The `a::b::C` path that starts at `text[start..]`.
fn path_at(text: &str, start: usize) -> Vec<String> {
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end]
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The module a path names: its longest prefix that is a module of the crate, else the crate root (items like
/// `crate::Running` live there).
fn resolve(modules: &std::collections::BTreeSet<String>, path: &[String]) -> String {
    (1..=path.len())
        .rev()
        .map(|k| path[..k].join("::"))
        .find(|m| modules.contains(m))
        .unwrap_or_default()
}

/// Which modules each module's code (tests left out) refers to through `crate::…` and `super::…` paths.
fn module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let files = sources(&src());
    let modules: std::collections::BTreeSet<String> =
        files.iter().map(|(p, _)| module_of(p)).collect();
    let mut graph = std::collections::BTreeMap::new();
    for (path, text) in &files {
        let me = module_of(path);
        let Some(code) = without_tests(path, text) else {
            continue;
        };
        let parent: Vec<String> = me
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let parent = &parent[..parent.len().saturating_sub(1)];
        let mut deps = std::collections::BTreeSet::new();
        for (prefix, base) in [("crate::", Vec::new()), ("super::", parent.to_vec())] {
            for (i, _) in code.match_indices(prefix) {
                let start = i + prefix.len();
                let groups: Vec<Vec<String>> = if code[start..].starts_with('{') {
                    let close = code[start..]
                        .find('}')
                        .map(|c| start + c)
                        .unwrap_or(code.len());
                    code[start + 1..close]
                        .split(',')
                        .map(|item| item.trim().split("::").map(str::to_string).collect())
                        .collect()
                } else {
                    vec![path_at(&code, start)]
                };
                for group in groups {
                    let full: Vec<String> = base.iter().cloned().chain(group).collect();
                    deps.insert(resolve(&modules, &full));
                }
            }
        }
        deps.remove(&me);
        graph.insert(me, deps);
    }
    graph
}

/// No two files of the server import each other, directly or around a circle.
#[test]
fn no_import_circle() {
    let graph = module_graph();
    assert!(graph.len() > 30, "the graph covers the server's files");
    fn visit(
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        node: &str,
        stack: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|n| n == node) {
            let mut circle = stack[pos..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(graph, next, stack, done) {
                return Some(circle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for node in graph.keys() {
        if let Some(circle) = visit(&graph, node, &mut Vec::new(), &mut done) {
            let named: Vec<String> = circle
                .iter()
                .map(|m| {
                    if m.is_empty() {
                        "lib".to_string()
                    } else {
                        m.clone()
                    }
                })
                .collect();
            panic!("an import circle: {}", named.join(" → "));
        }
    }
}

/// The checks above must be able to fail: a forbidden name in a layer's code is found.
#[test]
fn the_check_finds_a_forbidden_name() {
    let result = std::panic::catch_unwind(|| check("domain", &["pub fn"]));
    assert!(
        result.is_err(),
        "the domain has public functions, and the check must see them"
    );
}
