//! The crate stays pure: no network, file, clock or task in its sources, and no dependency of ours beyond `pump`
//! (the server's listener and the pump's client do the I/O).

#[test]
fn the_sources_do_no_io_and_read_no_clock() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = vec![];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for needle in [
            "std::net",
            "std::fs",
            "std::io",
            "std::thread",
            "std::time",
            "tokio",
            "Timestamp::now",
            "SystemTime",
            "Instant",
        ] {
            if text.contains(needle) {
                found.push(format!("{} uses {needle}", path.display()));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn its_dependencies_are_pump_thiserror_and_jiff() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    let names: Vec<&str> = deps
        .lines()
        .filter_map(|l| l.split(['.', ' ', '=']).next())
        .filter(|n| !n.is_empty())
        .collect();
    assert_eq!(names, ["pump", "thiserror", "jiff"]);
}
