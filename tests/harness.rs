//! Small helpers shared by the test modules.

use std::path::{Path, PathBuf};

use drctl::actions::Registry;
use drctl::check::{Checked, check_source};
use drctl::dag::Override;
use drctl::diagnostic::{SourceFile, render_text};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `*.toml` file in `dir` (relative to the repository root), sorted.
pub fn toml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// A path relative to the repository root, with forward slashes, for stable output.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A fixture's header: the codes it must produce (`# expect: DRC0001 ...`) and the `--param`
/// overrides to apply (`# overrides: a=1 b=2`).
pub struct Header {
    pub expect: Vec<String>,
    pub overrides: Vec<Override>,
}

pub fn header(text: &str) -> Header {
    let mut expect = Vec::new();
    let mut overrides = Vec::new();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(codes) = line.strip_prefix("# expect:") {
            expect.extend(codes.split_whitespace().map(String::from));
        }
        if let Some(list) = line.strip_prefix("# overrides:") {
            overrides.extend(
                list.split_whitespace()
                    .map(|o| o.parse::<Override>().expect("override")),
            );
        }
    }
    Header { expect, overrides }
}

/// Checks a file as `drctl validate` would, returning the result and the rendered text.
pub fn check(path: &Path) -> (Checked, String, Header) {
    let text = std::fs::read_to_string(path).expect("fixture is readable");
    let header = header(&text);
    let checked = check_source(
        SourceFile::new(relative(path), text),
        &Registry::builtin(),
        &header.overrides,
    );
    let rendered = render_text(&checked.source, &checked.diagnostics, false);
    (checked, rendered, header)
}

/// The codes found, each once, sorted.
pub fn codes(checked: &Checked) -> Vec<String> {
    let mut codes: Vec<String> = checked
        .diagnostics
        .iter()
        .map(|d| d.code.to_string())
        .collect();
    codes.sort();
    codes.dedup();
    codes
}
