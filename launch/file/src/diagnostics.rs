//! Errors in launch files, with file, line, column, the offending line and a hint — the way a
//! compiler reports them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the whole file.
    pub line: u32,
    pub column: u32,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(file: &Path, line: u32, column: u32, message: String) -> Self {
        Self { file: file.to_path_buf(), line, column, message, hint: None }
    }

    pub fn file(file: &Path, message: String) -> Self {
        Self::new(file, 0, 0, message)
    }

    pub fn at(file: &Path, location: &serde_saphyr::Location, message: String) -> Self {
        Self::new(file, location.line() as u32, location.column() as u32, message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// A YAML syntax or type error (unknown key, wrong type, ...) from the parser.
    pub fn from_yaml(file: &Path, error: &serde_saphyr::Error) -> Self {
        let (line, column) = error.location().map_or((0, 0), |l| (l.line() as u32, l.column() as u32));
        // The parser's own text repeats the position and draws a snippet; keep its first line.
        let text = error.to_string();
        let message = text.lines().next().unwrap_or("invalid YAML").trim();
        let message = strip_position(message);
        let hint = if message.contains("unknown field") {
            Some("see launch/reference.yaml for every key, or `reflex schema` for the JSON schema".to_string())
        } else {
            None
        };
        Self { file: file.to_path_buf(), line, column, message, hint }
    }

    /// `file:line:col: error: message`, the source line with a caret, and the hint.
    pub fn render(&self, sources: &BTreeMap<PathBuf, String>) -> String {
        let mut out = String::new();
        if self.line == 0 {
            let _ = writeln!(out, "{}: error: {}", self.file.display(), self.message);
        } else {
            let _ = writeln!(out, "{}:{}:{}: error: {}", self.file.display(), self.line, self.column, self.message);
            let source = sources.get(&self.file).cloned().or_else(|| std::fs::read_to_string(&self.file).ok());
            if let Some(text) = source.as_deref().and_then(|t| t.lines().nth(self.line as usize - 1)) {
                let gutter = self.line.to_string().len();
                let _ = writeln!(out, "{:gutter$} |", "");
                let _ = writeln!(out, "{} | {text}", self.line);
                let _ = writeln!(out, "{:gutter$} | {}^", "", " ".repeat(self.column.saturating_sub(1) as usize));
            }
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = hint: {hint}");
        }
        out
    }
}

/// Removes the `error: line N column M: ` the parser puts before its messages (we print the
/// position our own way) and a trailing ` at line N, column M`.
fn strip_position(message: &str) -> String {
    let mut message = message.trim_start_matches("error: ");
    if let Some(rest) = message.strip_prefix("line ") {
        if let Some((_, after)) = rest.split_once(": ") {
            message = after;
        }
    }
    match message.rfind(" at line ") {
        Some(at) => message[..at].trim_end_matches(',').to_string(),
        None => message.to_string(),
    }
}

/// Several diagnostics: checks report everything they find, not only the first problem.
#[derive(Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn one(diagnostic: Diagnostic) -> Self {
        Self(vec![diagnostic])
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// Every diagnostic in file and line order, then the count.
    pub fn render(&self, sources: &BTreeMap<PathBuf, String>) -> String {
        let mut sorted: Vec<&Diagnostic> = self.0.iter().collect();
        sorted.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        let mut out: String = sorted.into_iter().map(|d| d.render(sources)).collect::<Vec<_>>().join("\n");
        let count = self.0.len();
        let _ = writeln!(out, "\n{count} error{} found", if count == 1 { "" } else { "s" });
        out
    }
}
