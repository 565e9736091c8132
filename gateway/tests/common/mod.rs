//! The real `consentry` binary, for the tests that run it as a user would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `consentry demo`, killed on drop.
pub struct Demo(pub Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `consentry demo` in `dir` on a free loopback port and returns it
/// once it has printed its walkthrough, with the lines it printed.
pub fn demo(dir: &Path) -> (Demo, Vec<String>) {
    demo_with(dir, &[])
}

/// [`demo`] with more arguments (e.g. `--witnesses`).
pub fn demo_with(dir: &Path, more: &[&str]) -> (Demo, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["demo", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .args(more)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let demo = Demo(child);
    let mut printed = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let done = line.starts_with("Stop with Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    (demo, printed)
}

/// Runs `consentry` with `args`: its exit code and everything it printed.
// Each test binary compiles this module; not every one runs the CLI.
#[allow(dead_code)]
pub fn consentry<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}
