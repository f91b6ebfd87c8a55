//! The run's report: a plain summary for the terminal, JSON for machines, and one HTML file
//! with inline SVG charts (no scripts, no CDN: it opens from a USB stick in the church office).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::check::CheckReport;
use crate::stats::{Percentiles, SecondBucket, Stats};

/// Thresholds from the command line; `None` means not judged.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Thresholds {
    pub p99_max_ms: Option<f64>,
    /// The headline series' slowest answer (the last item's close in `close`).
    pub max_ms: Option<f64>,
    pub min_rate: Option<f64>,
    pub max_errors: Option<u64>,
}

/// One measured stream of a scenario (bid acks, price deliveries, page loads...).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Series {
    pub name: String,
    /// What a latency means here, in words for the reader.
    pub measures: String,
    pub ok: u64,
    pub refused: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    /// Successful answers per second over the measured phase.
    pub ok_per_second: f64,
    pub latency: Percentiles,
    pub timeline: Vec<SecondBucket>,
    pub quantiles: Vec<(f64, f64)>,
}

impl Series {
    pub fn from_stats(name: &str, measures: &str, stats: &Stats, seconds: f64) -> Series {
        Series {
            name: name.to_string(),
            measures: measures.to_string(),
            ok: stats.ok(),
            refused: stats.refused().clone(),
            errors: stats.errors().clone(),
            ok_per_second: if seconds > 0.0 {
                stats.ok() as f64 / seconds
            } else {
                0.0
            },
            latency: stats.percentiles(),
            timeline: stats.timeline(),
            quantiles: stats.quantile_curve(),
        }
    }
}

/// A verdict against one threshold.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Verdict {
    pub what: String,
    pub limit: String,
    pub measured: String,
    pub passed: bool,
}

/// A scenario's own post-run check beyond the bid check: the close's winners, the race's
/// sales. A failed one fails the run as a failed bid check does (exit 1).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ScenarioCheck {
    pub what: String,
    /// What must hold, in words.
    pub expected: String,
    /// What was found, in words and counts.
    pub measured: String,
    pub passed: bool,
    /// The first problems in full.
    pub problems: Vec<String>,
}

/// The whole run.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Report {
    pub scenario: String,
    pub target: String,
    pub started_at: String,
    /// Scenario parameters as given (sizes, rates, durations).
    pub parameters: BTreeMap<String, String>,
    /// Length of the measured phase in seconds.
    pub seconds: f64,
    /// The first series is the headline one: thresholds are judged against it.
    pub series: Vec<Series>,
    /// Free-form figures (memory per connection, connections held, disconnects...).
    pub figures: BTreeMap<String, String>,
    pub check: Option<CheckReport>,
    /// The scenario's own checks (empty for most).
    pub checks: Vec<ScenarioCheck>,
    pub thresholds: Thresholds,
    pub verdicts: Vec<Verdict>,
    pub passed: bool,
}

impl Report {
    /// Judges the thresholds against the headline series and the check; sets `passed`.
    pub fn judge(&mut self) {
        self.verdicts.clear();
        if let Some(head) = self.series.first() {
            if let Some(limit) = self.thresholds.p99_max_ms {
                self.verdicts.push(Verdict {
                    what: format!("{} p99", head.name),
                    limit: format!("≤ {limit} ms"),
                    measured: format!("{:.2} ms", head.latency.p99_ms),
                    passed: head.latency.count > 0 && head.latency.p99_ms <= limit,
                });
            }
            if let Some(limit) = self.thresholds.max_ms {
                self.verdicts.push(Verdict {
                    what: format!("{} max", head.name),
                    limit: format!("≤ {limit} ms"),
                    measured: format!("{:.2} ms", head.latency.max_ms),
                    passed: head.latency.count > 0 && head.latency.max_ms <= limit,
                });
            }
            if let Some(limit) = self.thresholds.min_rate {
                self.verdicts.push(Verdict {
                    what: format!("{} rate", head.name),
                    limit: format!("≥ {limit}/s"),
                    measured: format!("{:.1}/s", head.ok_per_second),
                    passed: head.ok_per_second >= limit,
                });
            }
            if let Some(limit) = self.thresholds.max_errors {
                let errors: u64 = head.errors.values().sum();
                self.verdicts.push(Verdict {
                    what: format!("{} errors", head.name),
                    limit: format!("≤ {limit}"),
                    measured: errors.to_string(),
                    passed: errors <= limit,
                });
            }
        }
        if let Some(check) = &self.check {
            self.verdicts.push(Verdict {
                what: "no bid lost or duplicated, prices replay".into(),
                limit: "0 lost, 0 duplicated, 0 mismatches".into(),
                measured: format!(
                    "{} lost, {} duplicated, {} mismatches, {} unknown",
                    check.lost, check.duplicated, check.price_mismatches, check.unknown
                ),
                passed: check.passed,
            });
        }
        for c in &self.checks {
            self.verdicts.push(Verdict {
                what: c.what.clone(),
                limit: c.expected.clone(),
                measured: c.measured.clone(),
                passed: c.passed,
            });
        }
        self.passed = self.verdicts.iter().all(|v| v.passed);
    }

    /// Whether the post-run check (not the speed thresholds) failed.
    pub fn check_failed(&self) -> bool {
        self.check.as_ref().is_some_and(|c| !c.passed) || self.checks.iter().any(|c| !c.passed)
    }

    /// The plain-text summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "scenario {} against {}", self.scenario, self.target);
        for (k, v) in &self.parameters {
            let _ = writeln!(out, "  {k} = {v}");
        }
        let _ = writeln!(out, "measured for {:.1} s", self.seconds);
        for s in &self.series {
            let l = &s.latency;
            let _ = writeln!(out, "\n{} ({})", s.name, s.measures);
            let _ = writeln!(out, "  ok {} ({:.1}/s)", s.ok, s.ok_per_second);
            let _ = writeln!(
                out,
                "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (n={})",
                l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
            );
            if !s.refused.is_empty() {
                let _ = writeln!(out, "  refused: {}", kinds(&s.refused));
            }
            if !s.errors.is_empty() {
                let _ = writeln!(out, "  errors: {}", kinds(&s.errors));
            }
        }
        if !self.figures.is_empty() {
            let _ = writeln!(out);
            for (k, v) in &self.figures {
                let _ = writeln!(out, "{k}: {v}");
            }
        }
        if let Some(c) = &self.check {
            let _ = writeln!(
                out,
                "\ncheck over {} items: {} acknowledged, {} listed, {} lost, {} duplicated, {} recorded without ack, {} unknown, {} price mismatches",
                c.items, c.acknowledged, c.listed, c.lost, c.duplicated, c.recorded_without_ack, c.unknown, c.price_mismatches
            );
            for p in &c.problems {
                let _ = writeln!(out, "  ! {p}");
            }
        }
        for c in &self.checks {
            let _ = writeln!(out, "\ncheck {}: {}", c.what, c.measured);
            for p in &c.problems {
                let _ = writeln!(out, "  ! {p}");
            }
        }
        let _ = writeln!(out);
        for v in &self.verdicts {
            let mark = if v.passed { "PASS" } else { "FAIL" };
            let _ = writeln!(
                out,
                "{mark}  {}: {} (limit {})",
                v.what, v.measured, v.limit
            );
        }
        let _ = writeln!(
            out,
            "{}",
            if self.passed {
                "RESULT: PASS"
            } else {
                "RESULT: FAIL"
            }
        );
        out
    }

    /// A self-contained HTML page: verdict banner, tables, and SVG charts.
    pub fn html(&self) -> String {
        let mut h = String::new();
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        let color = if self.passed { "#1b7f3b" } else { "#b3261e" };
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>auuction load test: {} {}</title>\
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}}\
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}\
th{{background:#f4f4f4}}td:first-child,th:first-child{{text-align:left}}\
.banner{{color:#fff;padding:1em;font-size:1.6em;border-radius:6px}}svg{{background:#fafafa;border:1px solid #ddd}}\
.legend span{{margin-right:1.5em}}</style></head><body>",
            esc(&self.scenario),
            verdict
        );
        let _ = write!(
            h,
            "<div class=\"banner\" style=\"background:{color}\">{verdict}: {} against {}</div>",
            esc(&self.scenario),
            esc(&self.target)
        );
        let _ = write!(
            h,
            "<p>Started {}, measured for {:.1} s.</p>",
            esc(&self.started_at),
            self.seconds
        );
        if !self.verdicts.is_empty() {
            h.push_str("<h2>Verdicts</h2><table><tr><th>what</th><th>limit</th><th>measured</th><th>result</th></tr>");
            for v in &self.verdicts {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td style=\"color:{}\">{}</td></tr>",
                    esc(&v.what),
                    esc(&v.limit),
                    esc(&v.measured),
                    if v.passed { "#1b7f3b" } else { "#b3261e" },
                    if v.passed { "PASS" } else { "FAIL" }
                );
            }
            h.push_str("</table>");
        }
        h.push_str("<h2>Parameters</h2><table>");
        for (k, v) in &self.parameters {
            let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
        }
        for (k, v) in &self.figures {
            let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
        }
        h.push_str("</table>");
        for s in &self.series {
            let _ = write!(h, "<h2>{}</h2><p>{}</p>", esc(&s.name), esc(&s.measures));
            let l = &s.latency;
            let _ = write!(
                h,
                "<table><tr><th>ok</th><th>ok/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>\
<tr><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr></table>",
                s.ok, s.ok_per_second, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
            );
            if !s.refused.is_empty() || !s.errors.is_empty() {
                h.push_str("<table><tr><th>outcome</th><th>count</th></tr>");
                for (k, v) in &s.refused {
                    let _ = write!(h, "<tr><td>refused: {}</td><td>{v}</td></tr>", esc(k));
                }
                for (k, v) in &s.errors {
                    let _ = write!(h, "<tr><td>error: {}</td><td>{v}</td></tr>", esc(k));
                }
                h.push_str("</table>");
            }
            let p99: Vec<f64> = s.timeline.iter().map(|b| b.p99_ms).collect();
            let p50: Vec<f64> = s.timeline.iter().map(|b| b.p50_ms).collect();
            let max: Vec<f64> = s.timeline.iter().map(|b| b.max_ms).collect();
            h.push_str("<h3>Latency over time (ms, per second)</h3>");
            h.push_str(&line_chart(
                &[
                    ("p50", "#1f77b4", &p50),
                    ("p99", "#d62728", &p99),
                    ("max", "#999", &max),
                ],
                "second",
                self.thresholds.p99_max_ms,
            ));
            let ok: Vec<f64> = s.timeline.iter().map(|b| b.ok as f64).collect();
            let bad: Vec<f64> = s
                .timeline
                .iter()
                .map(|b| (b.refused + b.errors) as f64)
                .collect();
            h.push_str("<h3>Throughput (answers per second)</h3>");
            h.push_str(&line_chart(
                &[
                    ("ok", "#2ca02c", &ok),
                    ("refused + errors", "#ff7f0e", &bad),
                ],
                "second",
                self.thresholds.min_rate,
            ));
            h.push_str("<h3>Percentiles (ms)</h3><table><tr><th>quantile</th><th>ms</th></tr>");
            for (q, v) in &s.quantiles {
                let _ = write!(h, "<tr><td>{:.3} %</td><td>{v:.2}</td></tr>", q * 100.0);
            }
            h.push_str("</table>");
        }
        if let Some(c) = &self.check {
            let _ = write!(
                h,
                "<h2>Post-run check: {}</h2><table>\
<tr><td>items</td><td>{}</td></tr><tr><td>acknowledged</td><td>{}</td></tr><tr><td>listed</td><td>{}</td></tr>\
<tr><td>lost</td><td>{}</td></tr><tr><td>duplicated</td><td>{}</td></tr>\
<tr><td>recorded without ack</td><td>{}</td></tr><tr><td>unknown</td><td>{}</td></tr>\
<tr><td>price mismatches</td><td>{}</td></tr></table>",
                if c.passed { "PASS" } else { "FAIL" },
                c.items,
                c.acknowledged,
                c.listed,
                c.lost,
                c.duplicated,
                c.recorded_without_ack,
                c.unknown,
                c.price_mismatches
            );
            if !c.problems.is_empty() {
                h.push_str("<ul>");
                for p in &c.problems {
                    let _ = write!(h, "<li>{}</li>", esc(p));
                }
                h.push_str("</ul>");
            }
        }
        for c in &self.checks {
            let _ = write!(
                h,
                "<h2>Post-run check: {}: {}</h2><p>{} (must be: {})</p>",
                esc(&c.what),
                if c.passed { "PASS" } else { "FAIL" },
                esc(&c.measured),
                esc(&c.expected)
            );
            if !c.problems.is_empty() {
                h.push_str("<ul>");
                for p in &c.problems {
                    let _ = write!(h, "<li>{}</li>", esc(p));
                }
                h.push_str("</ul>");
            }
        }
        h.push_str("</body></html>\n");
        h
    }
}

fn kinds(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Escapes text for HTML bodies and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A line chart as inline SVG: one polyline per series over a shared x axis (the index),
/// y from zero to the largest value (or the threshold line, whichever is higher).
pub fn line_chart(
    series: &[(&str, &str, &[f64])],
    x_label: &str,
    threshold: Option<f64>,
) -> String {
    const W: f64 = 900.0;
    const H: f64 = 260.0;
    const PAD: f64 = 50.0;
    let n = series.iter().map(|s| s.2.len()).max().unwrap_or(0);
    let top = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .chain(threshold)
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.05 } else { 1.0 };
    let x = |i: usize| PAD + (W - 2.0 * PAD) * (i as f64) / ((n.max(2) - 1) as f64);
    let y = |v: f64| H - PAD + -(H - 2.0 * PAD) * (v / top);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">"
    );
    let _ = write!(
        svg,
        "<line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#555\"/><line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{b}\" stroke=\"#555\"/>",
        b = H - PAD,
        r = W - PAD
    );
    for frac in [0.0, 0.5, 1.0] {
        let v = top * frac / 1.05;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            PAD - 4.0,
            y(v) + 4.0,
            fmt_axis(v)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{} (0–{})</text>",
        W / 2.0,
        H - 15.0,
        esc(x_label),
        n.saturating_sub(1)
    );
    if let Some(t) = threshold {
        let _ = write!(
            svg,
            "<line x1=\"{PAD}\" y1=\"{yt:.1}\" x2=\"{r}\" y2=\"{yt:.1}\" stroke=\"#b3261e\" stroke-dasharray=\"6 4\"/><text x=\"{r}\" y=\"{ty:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#b3261e\">limit {}</text>",
            fmt_axis(t),
            yt = y(t),
            ty = y(t) - 4.0,
            r = W - PAD
        );
    }
    for (name, color, values) in series {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(if v.is_finite() { *v } else { 0.0 })))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
            esc(color),
            points.join(" "),
            esc(name)
        );
    }
    for (i, (name, color, _)) in series.iter().enumerate() {
        let lx = PAD + 10.0 + 140.0 * i as f64;
        let _ = write!(
            svg,
            "<rect x=\"{lx}\" y=\"12\" width=\"12\" height=\"4\" fill=\"{}\"/><text x=\"{}\" y=\"18\" font-size=\"12\">{}</text>",
            esc(color),
            lx + 16.0,
            esc(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn fmt_axis(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Outcome;
    use std::time::Duration;

    fn report() -> Report {
        let mut stats = Stats::new();
        for i in 0..100u64 {
            stats.record(i / 50, Duration::from_millis(1 + i % 5), &Outcome::Ok);
        }
        stats.record(
            1,
            Duration::from_millis(3),
            &Outcome::Refused("bid_too_low".into()),
        );
        Report {
            scenario: "storm".into(),
            target: "http://127.0.0.1:8080".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            seconds: 2.0,
            series: vec![Series::from_stats("bid ack", "bid to <ack>", &stats, 2.0)],
            check: Some(CheckReport {
                passed: true,
                ..CheckReport::default()
            }),
            thresholds: Thresholds {
                p99_max_ms: Some(10.0),
                max_ms: None,
                min_rate: Some(40.0),
                max_errors: None,
            },
            ..Report::default()
        }
    }

    #[test]
    fn thresholds_pass_and_fail() {
        let mut r = report();
        r.judge();
        assert!(r.passed, "{:?}", r.verdicts);
        assert_eq!(r.verdicts.len(), 3);
        r.thresholds.min_rate = Some(1000.0);
        r.judge();
        assert!(!r.passed);
        assert!(!r.check_failed());
        r.thresholds.min_rate = None;
        r.thresholds.max_errors = Some(0);
        r.series[0].errors.insert("http_404".into(), 1);
        r.judge();
        assert!(!r.passed);
    }

    #[test]
    fn a_failed_check_fails_the_run() {
        let mut r = report();
        r.check = Some(CheckReport {
            lost: 1,
            ..CheckReport::default()
        });
        r.judge();
        assert!(!r.passed);
        assert!(r.check_failed());
        assert!(r.summary().contains("RESULT: FAIL"));
    }

    #[test]
    fn a_failed_scenario_check_fails_the_run_and_is_shown() {
        let mut r = report();
        r.checks.push(ScenarioCheck {
            what: "winners replay".into(),
            expected: "every item".into(),
            measured: "1 of 2 items wrong".into(),
            passed: false,
            problems: vec!["it_3: winner p_7, replay gives p_9".into()],
        });
        r.judge();
        assert!(!r.passed);
        assert!(r.check_failed());
        assert!(r.summary().contains("it_3: winner p_7"));
        assert!(r.html().contains("winners replay: FAIL"));
    }

    #[test]
    fn the_slowest_answer_can_be_a_threshold() {
        let mut r = report();
        r.thresholds.max_ms = Some(4.0);
        r.judge();
        assert!(!r.passed, "the slowest answer took 5 ms");
        r.thresholds.max_ms = Some(6.0);
        r.judge();
        assert!(r.passed, "{:?}", r.verdicts);
    }

    #[test]
    fn html_is_self_contained_and_escaped() {
        let mut r = report();
        r.parameters
            .insert("note".into(), "<script>alert(1)</script>".into());
        r.judge();
        let html = r.html();
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<svg"));
        assert!(html.contains("PASS"));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("http://cdn") && !html.contains("https://"));
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn summary_and_json_carry_the_numbers() {
        let mut r = report();
        r.judge();
        let text = r.summary();
        assert!(text.contains("ok 100 (50.0/s)"), "{text}");
        assert!(text.contains("bid_too_low 1"));
        let json = serde_json::to_string(&r).expect("serialises");
        assert!(json.contains("\"p99_ms\""));
    }

    #[test]
    fn chart_handles_empty_and_flat_series() {
        let svg = line_chart(&[("a", "#000", &[])], "s", None);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let svg = line_chart(&[("a", "#000", &[0.0, 0.0])], "s", Some(5.0));
        assert!(svg.contains("limit 5.00"));
    }
}
