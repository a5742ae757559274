//! Results: tables printed to stdout and appended to `results.md`, structured numbers in
//! `results.json`, and each load client's raw output under `raw/`, all in the run's directory.

use std::path::{Path, PathBuf};

use crate::load::LoadResult;
use crate::stats;

#[derive(Debug)]
pub struct Report {
    dir: PathBuf,
    markdown: String,
    json: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    pub fn new(dir: &Path, header: &str) -> Report {
        std::fs::create_dir_all(dir.join("raw")).expect("create the results directory");
        let report = Report {
            dir: dir.to_path_buf(),
            markdown: format!("{header}\n"),
            json: serde_json::Map::new(),
        };
        report.save();
        report
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A file for one raw client output, e.g. `raw/php/paddock-hello-run2.txt`.
    pub fn raw_path(&self, scenario: &str, label: &str) -> PathBuf {
        let dir = self.dir.join("raw").join(scenario);
        std::fs::create_dir_all(&dir).expect("raw dir");
        let clean: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        dir.join(format!("{clean}.txt"))
    }

    /// Prints `table`, appends it to results.md and saves.
    pub fn table(&mut self, table: &Table) {
        let mut text = table.render();
        text += &format!(
            "\nLoad average (1, 5, 15 min) when this table was done: {}.\n",
            crate::machine::load_average()
        );
        println!("\n{text}");
        self.markdown.push('\n');
        self.markdown.push_str(&text);
        self.save();
    }

    /// Stores structured results under `key` in results.json.
    pub fn record(&mut self, key: &str, value: serde_json::Value) {
        self.json.insert(key.to_string(), value);
        self.save();
    }

    fn save(&self) {
        let _ = std::fs::write(self.dir.join("results.md"), &self.markdown);
        let json = serde_json::to_string_pretty(&self.json).unwrap_or_default();
        let _ = std::fs::write(self.dir.join("results.json"), json);
    }
}

/// A markdown table with a title and notes under it.
#[derive(Debug, Default)]
pub struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: &str, headers: &[&str]) -> Table {
        Table {
            title: title.to_string(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            ..Table::default()
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let padded: Vec<String> = (0..columns)
                .map(|i| {
                    let cell = cells.get(i).map(String::as_str).unwrap_or("");
                    format!("{cell:<width$}", width = widths[i])
                })
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = format!("### {}\n\n", self.title);
        out += &line(&self.headers);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out += &format!("|-{}-|\n", rule.join("-|-"));
        for row in &self.rows {
            out += &line(row);
        }
        for note in &self.notes {
            out += &format!("\n{note}\n");
        }
        out
    }
}

/// Several runs of one load, summarised.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    pub runs: Vec<LoadResult>,
}

impl Summary {
    pub(crate) fn push(&mut self, result: LoadResult) {
        self.runs.push(result);
    }

    fn values(&self, f: impl Fn(&LoadResult) -> f64) -> Vec<f64> {
        self.runs.iter().map(f).collect()
    }

    pub(crate) fn rps(&self) -> f64 {
        stats::median(&self.values(|r| r.rps))
    }

    pub(crate) fn spread(&self) -> f64 {
        stats::spread_percent(&self.values(|r| r.rps))
    }

    pub(crate) fn p50(&self) -> f64 {
        stats::median(&self.values(|r| r.p50_ms))
    }

    pub(crate) fn p99(&self) -> f64 {
        stats::median(&self.values(|r| r.p99_ms))
    }

    /// Median CPU time of the server's processes per request, in µs, if the runs measured it.
    pub(crate) fn cpu_us(&self) -> Option<f64> {
        self.measured_median(|r| r.cpu_us_per_request)
    }

    /// The CPU µs per request cell: "–" when the runs did not measure it.
    pub(crate) fn cpu_cell(&self) -> String {
        microseconds_cell(self.cpu_us())
    }

    /// Median CPU time of the stack's front end per request, in µs, if the runs measured it.
    pub(crate) fn front_cpu_us(&self) -> Option<f64> {
        self.measured_median(|r| r.front_cpu_us_per_request)
    }

    /// The front end's CPU µs per request cell: "–" when the runs did not measure it.
    pub(crate) fn front_cpu_cell(&self) -> String {
        microseconds_cell(self.front_cpu_us())
    }

    /// The median of a figure over the runs that measured it (none: `None`).
    fn measured_median(&self, figure: impl Fn(&LoadResult) -> Option<f64>) -> Option<f64> {
        let measured: Vec<f64> = self.runs.iter().filter_map(figure).collect();
        (!measured.is_empty()).then(|| stats::median(&measured))
    }

    pub(crate) fn errors(&self) -> u64 {
        self.runs.iter().map(|r| r.errors).sum()
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "median_rps": self.rps(),
            "spread_percent": self.spread(),
            "median_p50_ms": self.p50(),
            "median_p99_ms": self.p99(),
            "errors": self.errors(),
            "median_cpu_us_per_request": self.cpu_us(),
            "median_front_cpu_us_per_request": self.front_cpu_us(),
            "runs": self.runs.iter().map(LoadResult::to_json).collect::<Vec<_>>(),
        })
    }

    /// Runs in which not a single request was answered (wrk then reports no timeouts either).
    pub(crate) fn silent_runs(&self) -> usize {
        self.runs.iter().filter(|r| r.requests == 0).count()
    }

    /// Cells: req/s, spread, p50, p99, errors.
    pub(crate) fn cells(&self) -> Vec<String> {
        let silent = self.silent_runs();
        let errors = if silent > 0 {
            format!(
                "{}; nothing answered in {silent} of {} runs",
                self.errors(),
                self.runs.len()
            )
        } else {
            self.errors().to_string()
        };
        let rates = self.values(|r| r.rps);
        let spread = if self.spread() > 100.0 {
            // A run that collapsed: a percentage of the median says nothing, show the range.
            let max = rates.iter().copied().fold(0.0, f64::max);
            let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
            format!("{}–{}", rps(min), rps(max))
        } else {
            format!("±{:.0} %", self.spread() / 2.0)
        };
        vec![
            rps(self.rps()),
            spread,
            ms(self.p50()),
            ms(self.p99()),
            errors,
        ]
    }
}

/// 14123.4 → "14,123".
pub(crate) fn rps(value: f64) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let n = value.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with sensible precision.
pub(crate) fn ms(value: f64) -> String {
    if !value.is_finite() {
        "–".into()
    } else if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// paddock / peer as "1.23×".
pub(crate) fn ratio(paddock: f64, peer: f64) -> String {
    if peer > 0.0 && paddock.is_finite() && peer.is_finite() {
        format!("{:.2}×", paddock / peer)
    } else if paddock > 0.0 {
        "∞".into()
    } else {
        "–".into()
    }
}

/// A figure in µs as a table cell, "–" when it was not measured.
fn microseconds_cell(us: Option<f64>) -> String {
    us.map_or_else(|| "–".to_string(), |us| format!("{us:.0}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_for_tables() {
        assert_eq!(rps(14123.4), "14,123");
        assert_eq!(rps(999.0), "999");
        assert_eq!(rps(1_234_567.0), "1,234,567");
        assert_eq!(ms(0.757), "0.76");
        assert_eq!(ms(123.4), "123");
        assert_eq!(ratio(12.0, 10.0), "1.20×");
    }
}
