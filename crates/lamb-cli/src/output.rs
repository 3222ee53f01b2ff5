//! Printing: tables for people, the API's JSON with `--json`.

use comfy_table::presets::NOTHING;
use comfy_table::Table;
use serde_json::Value;

pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING).set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    t.to_string()
}

/// A value for a table cell: strings bare, absent as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `key  value` lines for one object's chosen members.
pub fn key_values(v: &Value, keys: &[&str]) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    for k in keys.iter().filter(|k| !v[**k].is_null()) {
        t.add_row(vec![(*k).to_owned(), cell(&v[*k])]);
    }
    t.to_string()
}
