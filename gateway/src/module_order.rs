//! The rooms of this crate import one way: each top-level module (a file
//! or a folder) reaches through `crate::` only the rooms before it in
//! [`ROOMS`] (or its own), so that no two rooms import each other.

use std::path::{Path, PathBuf};

/// The rooms in dependency order, lowest first: the order of `lib.rs`'s
/// layout docs.
const ROOMS: &[&str] = &[
    "words",
    "clock",
    "origin",
    "source",
    "listener",
    "tls",
    "httpsig",
    "deployment",
    "problem",
    "quota",
    "upstream",
    "client",
    "agency",
    "participant",
    "auditor",
    "logview",
    "witness",
    "bench",
    "server",
    "config",
    "demo",
];

fn order() -> Vec<String> {
    ROOMS.iter().map(|r| r.to_string()).collect()
}

/// The `pub mod` names of `lib.rs`.
fn rooms(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect()
}

/// The modules a source file reaches through `crate::`, wherever the path
/// appears (imports, inline paths, doc links).
fn reached(source: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (at, _) in source.match_indices("crate::") {
        let rest = &source[at + "crate::".len()..];
        // A grouped import would hide its members from this scan.
        if rest.starts_with('{') {
            return Err("write `crate::module::...`, not `crate::{...}`".into());
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `crate::` alone (in a string, say) names no module.
        if !name.is_empty() {
            out.push(name);
        }
    }
    Ok(out)
}

/// Every `.rs` file of room `name`: `src/name.rs` and all of `src/name/`.
fn files_of(src: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let file = src.join(format!("{name}.rs"));
    if file.exists() {
        out.push(file);
    }
    let mut dirs = vec![src.join(name)];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out
}

/// Each backward import, as "room file -> target".
fn backward_imports(src: &Path, order: &[String]) -> Vec<String> {
    let mut bad = Vec::new();
    for (position, room) in order.iter().enumerate() {
        let files = files_of(src, room);
        assert!(!files.is_empty(), "room `{room}` has no source file");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let targets = reached(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for target in targets {
                match order.iter().position(|r| *r == target) {
                    // A room may name its own files by their whole path.
                    Some(t) if t == position => {}
                    Some(t) if t > position => {
                        bad.push(format!(
                            "{} (room `{room}`) -> `{target}`, declared below it",
                            file.display()
                        ));
                    }
                    Some(_) => {}
                    None => bad.push(format!("{} -> crate::{target}, not a room", file.display())),
                }
            }
        }
    }
    bad
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn rooms_import_only_rooms_above_them() {
    let src = src();
    let bad = backward_imports(&src, &order());
    assert!(
        bad.is_empty(),
        "imports against the order of lib.rs:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_source_file_belongs_to_a_declared_room() {
    let src = src();
    let mut declared = rooms(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut order = order();
    declared.sort_unstable();
    order.sort_unstable();
    assert_eq!(
        declared, order,
        "lib.rs declares exactly the rooms of ROOMS"
    );
    // The binary's files (main.rs and its commands) are not the library's.
    let binary = ["lib.rs", "main.rs", "module_order.rs", "cmd"];
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if binary.contains(&name.as_str()) {
            continue;
        }
        let room = name.trim_end_matches(".rs");
        assert!(
            order.iter().any(|r| r == room),
            "src/{name} is in no room that lib.rs declares"
        );
    }
}

#[test]
fn the_order_test_catches_a_backward_import() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("low.rs"), "use crate::high::X;\n").unwrap();
    std::fs::create_dir(dir.path().join("high")).unwrap();
    std::fs::write(dir.path().join("high/mod.rs"), "use crate::low::Y;\n").unwrap();
    let order = vec!["low".to_string(), "high".to_string()];
    let bad = backward_imports(dir.path(), &order);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].contains("-> `high`"), "{bad:?}");
    assert!(reached("use crate::{a, b};").is_err());
    assert_eq!(
        reached("fn f() { crate::deployment::x(); } /// [`crate::words`]").unwrap(),
        vec!["deployment".to_string(), "words".to_string()]
    );
}
