//! No function outside tests is longer than a reader can hold: 120 lines
//! (TigerStyle asks 70; the longest here are the handlers and the
//! auditor's phases, each a list of named steps). The check reads the
//! sources of the library crates with a small lexer (strings, chars,
//! lifetimes and comments skipped) and measures every `fn` from its line
//! to its closing brace.

use std::path::{Path, PathBuf};

const FN_LINES_MAX: usize = 120;

/// The crates whose non-test code is held to the limit, from the
/// workspace root.
const SOURCES: &[&str] = &[
    "ledger/src",
    "policy/src",
    "gateway/src",
    "gateway/audit/src",
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
}

/// Tokens of interest with their 1-based line: identifiers and the
/// punctuation that shapes items. Literals and comments are skipped.
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut out) = (0usize, 1usize, Vec::new());
    let at = |i: usize| b.get(i).copied().unwrap_or('\0');
    while i < b.len() {
        let c = b[i];
        let raw = (c == 'r' && matches!(at(i + 1), '"' | '#'))
            || (c == 'b' && at(i + 1) == 'r' && matches!(at(i + 2), '"' | '#'));
        if raw {
            // r"..", r#".."#, br#".."#; or `r#ident`.
            let mut j = i + if c == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            if at(j) != '"' {
                i = j;
                continue;
            }
            j += 1;
            while j < b.len() {
                if b[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                    j += 1 + hashes;
                    break;
                }
                line += usize::from(b[j] == '\n');
                j += 1;
            }
            i = j;
            continue;
        }
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if at(i + 1) == '/' => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if b[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        line += usize::from(b[i] == '\n');
                        i += 1;
                    }
                }
            }
            '"' => {
                i += 1;
                while i < b.len() && b[i] != '"' {
                    if b[i] == '\\' {
                        i += 1;
                    }
                    line += usize::from(at(i) == '\n');
                    i += 1;
                }
                i += 1;
            }
            '\'' => {
                // A char literal ('x', '\n', '\'', '\u{..}') or a lifetime.
                if at(i + 1) == '\\' {
                    i += 3;
                    while i < b.len() && b[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if at(i + 2) == '\'' {
                    i += 3;
                } else {
                    i += 1;
                    while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                        i += 1;
                    }
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                    i += 1;
                }
                out.push((Tok::Ident(b[start..i].iter().collect()), line));
            }
            '{' | '}' | ';' | '#' | '[' | ']' | '(' | ')' => {
                out.push((Tok::Punct(c), line));
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Every function outside `#[cfg(test)]` items: (name, first line, lines).
fn functions(src: &str) -> Vec<(String, usize, usize)> {
    let toks = lex(src);
    let ident = |i: usize, s: &str| matches!(toks.get(i), Some((Tok::Ident(x), _)) if x == s);
    let punct = |i: usize, c: char| matches!(toks.get(i), Some((Tok::Punct(x), _)) if *x == c);
    // The token after the closing brace matching the `{` at `open`.
    let close = |open: usize| -> usize {
        let mut depth = 0i64;
        let mut j = open;
        while j < toks.len() {
            if punct(j, '{') {
                depth += 1;
            } else if punct(j, '}') {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            j += 1;
        }
        toks.len().saturating_sub(1)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        // `#[cfg(test)]` on the next item: skip that item whole.
        if punct(i, '#')
            && punct(i + 1, '[')
            && ident(i + 2, "cfg")
            && punct(i + 3, '(')
            && ident(i + 4, "test")
            && punct(i + 5, ')')
        {
            let mut j = i + 6;
            while j < toks.len() && !punct(j, '{') && !punct(j, ';') {
                j += 1;
            }
            i = if punct(j, '{') { close(j) + 1 } else { j + 1 };
            continue;
        }
        if ident(i, "fn") {
            if let Some((Tok::Ident(name), line)) = toks.get(i + 1) {
                let mut j = i + 2;
                while j < toks.len() && !punct(j, '{') && !punct(j, ';') {
                    j += 1;
                }
                if punct(j, '{') {
                    let end = close(j);
                    out.push((name.clone(), *line, toks[end].1 - line + 1));
                }
            }
        }
        i += 1;
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Test modules kept in files of their own (`mod tests;` under
/// `#[cfg(test)]`) are tests, not code a server runs.
fn is_test_file(p: &Path) -> bool {
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    stem == "tests" || stem.ends_with("_tests") || stem == "module_order"
}

#[test]
fn no_function_outside_tests_is_over_the_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for s in SOURCES {
        rust_files(&root.join(s), &mut files);
    }
    assert!(files.len() > 50, "the sources were not found: {files:?}");
    let mut long = Vec::new();
    let mut counted = 0;
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let src = std::fs::read_to_string(f).unwrap();
        for (name, line, lines) in functions(&src) {
            counted += 1;
            if lines > FN_LINES_MAX {
                long.push(format!("{}:{line} {name}: {lines} lines", f.display()));
            }
        }
    }
    assert!(
        counted > 500,
        "only {counted} functions found: the lexer lost its way"
    );
    assert!(
        long.is_empty(),
        "over {FN_LINES_MAX} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_lexer_measures_what_a_reader_sees() {
    let src = r##"
fn short() { let c = '{'; let s = "}}}"; let r = r#"{"#; }
/// fn in_a_comment() {
#[cfg(test)]
mod tests { fn hidden() {
} }
fn two<'a>(x: &'a str) -> &'a str {
    // }
    x
}
"##;
    let fns = functions(src);
    assert_eq!(
        fns,
        vec![("short".to_string(), 2, 1), ("two".to_string(), 7, 4)]
    );
}
