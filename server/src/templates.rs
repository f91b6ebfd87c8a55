//! The minijinja environment: templates from `templates/`, HTML autoescaped, a few filters
//! for money and dates.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use minijinja::{path_loader, AutoEscape, Environment, Value};

use crate::local_time::LocalTime;

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn load(dir: &Path, zone: LocalTime) -> anyhow::Result<Templates> {
        if !dir.join("base.html").is_file() {
            anyhow::bail!(
                "templates not found in {} (set TEMPLATE_DIR)",
                dir.display()
            );
        }
        let mut env = Environment::new();
        env.set_loader(path_loader(dir));
        // HTML is escaped; plain-text emails are not (they are never rendered as HTML).
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.add_filter("money", money);
        env.add_filter("datetime", move |value: String| datetime(zone, value));
        env.add_global("time_zone", zone.name());
        // Fail at start, not on the first visitor, when a template does not parse.
        for name in ["base.html", "error.html"] {
            env.get_template(name)
                .with_context(|| format!("loading template {name}"))?;
        }
        Ok(Templates { env })
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

/// Cents (integer) → `$1,234.50` (the `money` filter; text messages use it too).
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let dollars = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in dollars.chars().enumerate() {
        if i > 0 && (dollars.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}${grouped}.{:02}", abs % 100)
}

/// RFC 3339 text → `Sunday, May 3, 2026, 2:00 PM EDT`, in the auction's time zone.
fn datetime(zone: LocalTime, value: String) -> String {
    match DateTime::parse_from_rfc3339(&value) {
        Ok(t) => zone.long(t.with_timezone(&Utc)),
        Err(_) => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands() {
        assert_eq!(money(0), "$0.00");
        assert_eq!(money(5), "$0.05");
        assert_eq!(money(123456789), "$1,234,567.89");
        assert_eq!(money(100000), "$1,000.00");
    }

    #[test]
    fn datetime_reads_well() {
        let zone = LocalTime::parse("America/Chicago").unwrap();
        assert_eq!(
            datetime(zone, "2026-05-03T18:00:00Z".into()),
            "Sunday, May 3, 2026, 1:00 PM CDT"
        );
        assert_eq!(datetime(zone, "garbage".into()), "garbage");
    }
}
