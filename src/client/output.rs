//! Human-readable output: aligned `key: value` lines and tables. Text from the server is printed
//! with control characters escaped, so that no answer can move a terminal's cursor or hide a line.

use serde_json::Value;

/// `s` with every control character (line breaks included) written as `\u{…}`.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON value as one line of text: strings as they are, lists joined with `, `, anything else
/// as compact JSON; `None` for null or missing.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(clean(s)),
        Value::Array(items) => Some(items.iter().filter_map(text).collect::<Vec<_>>().join(", ")),
        other => Some(clean(&other.to_string())),
    }
}

/// Print the server's JSON answer as it came.
pub fn raw(answer: &str) {
    println!("{}", answer.trim_end());
}

/// `key: value` lines, the values aligned.
#[derive(Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// No lines yet.
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Add a line; skipped when `value` is null or missing.
    pub fn add(&mut self, key: &str, value: &Value) -> &mut Fields {
        if let Some(t) = text(value) {
            self.0.push((key.to_string(), t));
        }
        self
    }

    /// Add the listed keys of `object`, each under its own name.
    pub fn keys(&mut self, object: &Value, keys: &[&str]) -> &mut Fields {
        for k in keys {
            self.add(k, &object[*k]);
        }
        self
    }

    /// Add a line with a value made here (not from the server's JSON).
    pub fn line(&mut self, key: &str, value: impl Into<String>) -> &mut Fields {
        self.0.push((key.to_string(), value.into()));
        self
    }

    /// Print the lines on stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }

    fn render(&self) -> String {
        let width = self
            .0
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (k, v) in &self.0 {
            out.push_str(&format!("{:<w$} {v}\n", format!("{k}:"), w = width + 1));
        }
        out
    }
}

/// A table: a header row in capitals, columns two spaces apart, the last one not padded.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names (shown in capitals).
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_uppercase()).collect(),
            rows: Vec::new(),
        }
    }

    /// A row of the listed keys of `object` (`-` where one is missing).
    pub fn row_of(&mut self, object: &Value, keys: &[&str]) {
        self.row(
            keys.iter()
                .map(|k| text(&object[*k]).unwrap_or_else(|| "-".into()))
                .collect(),
        );
    }

    /// A row of cells as they are.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Print the table on stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }

    fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(n) {
                if i + 1 == n {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_align_and_skip_nulls() {
        let v = json!({"id": "req_1", "status": "pending", "serial": null, "subject_alt_emails": ["a@b.c", "d@e.f"]});
        let mut f = Fields::new();
        f.keys(&v, &["id", "status", "serial", "subject_alt_emails"]);
        assert_eq!(
            f.render(),
            "id:                 req_1\nstatus:             pending\nsubject_alt_emails: a@b.c, d@e.f\n"
        );
    }

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["id", "name"]);
        t.row_of(&json!({"id": "op_1", "name": "alice"}), &["id", "name"]);
        t.row_of(&json!({"id": "op_22"}), &["id", "name"]);
        assert_eq!(t.render(), "ID     NAME\nop_1   alice\nop_22  -\n");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            clean("a\u{1b}[2Jb\nc\u{202e}"),
            "a\\u{1b}[2Jb\\u{a}c\\u{202e}"
        );
    }
}
