//! Output of the control-plane commands: `-o table|json|yaml`, aligned tables, key/value
//! summaries, and times shown as ages (`5m`) the way kubectl does.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::ValueEnum;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `-o`: how a command prints what the server returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns (or key/value lines) for people.
    #[default]
    Table,
    /// The server's objects as pretty-printed JSON.
    Json,
    /// The same objects as YAML.
    Yaml,
}

/// Prints `value` as JSON or YAML; tables are each command's own business.
pub(crate) fn document<T: Serialize + ?Sized>(
    out: &mut dyn Write,
    format: Format,
    value: &T,
) -> Result<()> {
    if format == Format::Yaml {
        out.write_all(serde_norway::to_string(value)?.as_bytes())?;
    } else {
        serde_json::to_writer_pretty(&mut *out, value)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Columns separated by three spaces, as kubectl prints them.
const GAP: &str = "   ";

/// A table with a header row; cells are plain strings, widths are computed on render.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column titles.
    pub(crate) fn new(header: &[&'static str]) -> Self {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells print empty, extra ones are ignored).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// True when no row was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The header line, then one line per row, aligned, without trailing blanks.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        std::iter::once(&header)
            .chain(&self.rows)
            .map(|row| line(&widths, row))
            .collect()
    }

    /// Prints the table, or `empty` on standard error when it has no rows (as kubectl
    /// does, so that a script reading standard output sees nothing).
    pub(crate) fn print(&self, out: &mut dyn Write, empty: &str) -> Result<()> {
        if self.is_empty() {
            eprintln!("{empty}");
            return Ok(());
        }
        for line in self.lines() {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

fn line(widths: &[usize], row: &[String]) -> String {
    let mut out = String::new();
    for (i, width) in widths.iter().enumerate() {
        let cell = row.get(i).map_or("", String::as_str);
        if i > 0 {
            out.push_str(GAP);
        }
        out.push_str(cell);
        let pad = width.saturating_sub(cell.chars().count());
        out.extend(std::iter::repeat_n(' ', pad));
    }
    out.truncate(out.trim_end().len());
    out
}

/// Prints `key: value` lines with the values aligned.
pub(crate) fn fields(out: &mut dyn Write, pairs: &[(&str, String)]) -> Result<()> {
    let width = pairs.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    for (key, value) in pairs {
        writeln!(out, "{:<width$}  {value}", format!("{key}:"))?;
    }
    Ok(())
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Seconds since the Unix epoch of an RFC 3339 time, if it is one.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// A span as kubectl shows ages: `45s`, `12m`, `5h`, `3d` (two units of the next-smaller
/// size before switching, so `90s` and `90m` stay precise).
pub(crate) fn span(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// How long ago `time` was (`5m`), or `-` when there is no time, or the text itself when
/// it is not RFC 3339.
pub(crate) fn age(time: Option<&str>, now: i64) -> String {
    match time {
        None | Some("") => "-".to_owned(),
        Some(text) => parse_time(text).map_or_else(|| text.to_owned(), |t| span(now - t)),
    }
}

/// How long until `time` (`in 23h`), or `expired`, `-`, or the unparsable text.
pub(crate) fn until(time: Option<&str>, now: i64) -> String {
    match time {
        None | Some("") => "-".to_owned(),
        Some(text) => match parse_time(text) {
            Some(t) if t > now => format!("in {}", span(t - now)),
            Some(_) => "expired".to_owned(),
            None => text.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_drop_trailing_blanks() {
        let mut table = Table::new(&["KIND", "NAMESPACE", "NAME"]);
        table.row(vec!["NetworkPolicy".into(), "shop".into(), "web".into()]);
        table.row(vec!["Namespace".into(), String::new(), "shop".into()]);
        assert_eq!(
            table.lines(),
            [
                "KIND            NAMESPACE   NAME",
                "NetworkPolicy   shop        web",
                "Namespace                   shop",
            ]
        );
    }

    #[test]
    fn a_last_empty_cell_leaves_no_trailing_spaces() {
        let mut table = Table::new(&["A", "B"]);
        table.row(vec!["x".into()]);
        assert_eq!(table.lines(), ["A   B", "x"]);
        assert!(!table.is_empty());
    }

    #[test]
    fn key_value_lines_align() {
        let mut out = Vec::new();
        fields(
            &mut out,
            &[("version", "1".into()), ("trust domain", "td".into())],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "version:       1\ntrust domain:  td\n"
        );
    }

    #[test]
    fn spans_read_like_kubectl_ages() {
        assert_eq!(span(-5), "0s");
        assert_eq!(span(90), "90s");
        assert_eq!(span(150), "2m");
        assert_eq!(span(5_400), "90m");
        assert_eq!(span(10_800), "3h");
        assert_eq!(span(200_000), "2d");
    }

    #[test]
    fn ages_and_expiries_come_from_rfc3339_times() {
        let t = parse_time("2030-01-01T00:00:00Z").unwrap();
        assert_eq!(age(Some("2030-01-01T00:00:00Z"), t + 30), "30s");
        assert_eq!(age(None, t), "-");
        assert_eq!(age(Some("yesterday"), t), "yesterday");
        assert_eq!(until(Some("2030-01-01T00:00:00Z"), t - 7_200), "in 2h");
        assert_eq!(until(Some("2030-01-01T00:00:00Z"), t + 1), "expired");
    }

    #[test]
    fn documents_print_as_json_or_yaml() {
        let value = serde_json::json!({"revision": 3, "items": []});
        let mut json = Vec::new();
        document(&mut json, Format::Json, &value).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            "{\n  \"revision\": 3,\n  \"items\": []\n}\n"
        );
        let mut yaml = Vec::new();
        document(&mut yaml, Format::Yaml, &value).unwrap();
        assert_eq!(String::from_utf8(yaml).unwrap(), "revision: 3\nitems: []\n");
    }
}
