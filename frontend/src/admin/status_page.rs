//! The `/status` page for people: one section per pool with its live charts, its figures, a
//! scoreboard line and a table of its workers (what each one is running right now), then its
//! recent exits. The tables are plain HTML and work in any browser, text-mode ones included;
//! the charts are a small inline script drawing SVG from `/status/history` every 2 s (no
//! library, nothing fetched from elsewhere).

use std::fmt::Write;
use std::time::SystemTime;

use crate::metrics::report::{PoolReport, StatusReport, WorkerReport};

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { margin-bottom: .2em; }
h2 { margin-top: 1.6em; border-bottom: 2px solid #ddd; }
table { border-collapse: collapse; margin: .4em 0 1em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.busy { background: #fff4cc; }
tr.starting { background: #e6f0ff; }
tr.retiring { background: #fbe0e0; }
.bad { color: #a00; font-weight: bold; }
.good { color: #070; font-weight: bold; }
.board { font-family: monospace; font-size: 1.3em; letter-spacing: .15em; }
.meta, .legend { color: #555; }
code { font-size: .95em; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: .6em; max-width: 70em; }
.chart { border: 1px solid #ddd; padding: .3em .5em; }
.chart h3 { font-size: .85em; margin: 0; font-weight: normal; color: #444; }
.chart svg { width: 100%; height: 5em; display: block; }
.chart polyline { fill: none; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.chart .p0 { stroke: #1565c0; } .chart .p1 { stroke: #c62828; }
.chart span.p0 { color: #1565c0; } .chart span.p1 { color: #c62828; }
@media (max-width: 40em) { body { margin: .6em; } table { font-size: .8em; } }
";

/// Draws every `.charts` element's pool from `/status/history`, and again every 2 s. Each chart
/// spans the whole 15 minutes, newest on the right, scaled to its largest value (printed).
const CHARTS: &str = r#"
(function () {
  var kinds = [
    ["rps", "requests / s", [function (s) { return s.rps; }]],
    ["latency", '<span class="p0">p50</span> / <span class="p1">p99</span> ms', [function (s) { return s.p50_ms; }, function (s) { return s.p99_ms; }]],
    ["queue", "waiting", [function (s) { return s.waiting; }]],
    ["busy", "busy slots", [function (s) { return s.busy; }]]
  ];
  function draw(samples, span, kind) {
    var end = samples.length ? samples[samples.length - 1].t : 0, max = 0;
    kind[2].forEach(function (get) {
      samples.forEach(function (s) { var v = get(s); if (v != null && v > max) max = v; });
    });
    var lines = kind[2].map(function (get, i) {
      var points = samples.filter(function (s) { return get(s) != null; }).map(function (s) {
        var x = 300 - 300 * (end - s.t) / span, y = 78 - 74 * get(s) / (max || 1);
        return x.toFixed(1) + "," + y.toFixed(1);
      }).join(" ");
      return '<polyline class="p' + i + '" points="' + points + '"/>';
    }).join("");
    var top = max >= 100 ? max.toFixed(0) : max.toFixed(1);
    return '<div class="chart chart-' + kind[0] + '"><h3>' + kind[1] + ' (max ' + top +
      ')</h3><svg viewBox="0 0 300 80" preserveAspectRatio="none">' + lines + '</svg></div>';
  }
  function update() {
    fetch("/status/history", { cache: "no-store" }).then(function (r) { return r.json(); })
      .then(function (h) {
        var span = h.interval_seconds * h.kept_samples;
        document.querySelectorAll(".charts").forEach(function (div) {
          var samples = h.pools[div.getAttribute("data-pool")] || [];
          div.innerHTML = kinds.map(function (k) { return draw(samples, span, k); }).join("");
          div.setAttribute("data-samples", samples.length);
        });
      }).catch(function () {});
  }
  update();
  setInterval(update, 2000);
})();
"#;

pub(super) fn render(report: &StatusReport, refresh: Option<u32>) -> String {
    let mut page = String::with_capacity(8192);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    page.push_str("<title>paddock status</title>\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    if let Some(seconds) = refresh {
        let _ = writeln!(page, "<meta http-equiv=\"refresh\" content=\"{seconds}\">");
    }
    let _ = writeln!(page, "<style>{STYLE}</style></head><body>");
    page.push_str("<h1>paddock status</h1>\n");
    let _ = writeln!(
        page,
        "<p class=\"meta\">version {} &middot; front end pid {} &middot; up {} &middot; \
         <a href=\"?json\">JSON</a> &middot; <a href=\"/metrics\">metrics</a> &middot; \
         <a href=\"?refresh=5\">refresh every 5&nbsp;s</a></p>",
        report.version,
        report.pid,
        duration(report.uptime_seconds)
    );
    if report.pools.is_empty() {
        page.push_str("<p>No pools are configured.</p>\n");
    }
    for pool in &report.pools {
        render_pool(&mut page, pool);
    }
    page.push_str(
        "<p class=\"legend\">Scoreboard: <code>S</code> starting, <code>_</code> idle, \
         <code>W</code> busy, <code>R</code> retiring (no new requests; waiting to exit). \
         Paths are shown without their query string.</p>\n",
    );
    let _ = writeln!(page, "<script>{CHARTS}</script>\n</body></html>");
    page
}

/// The pool's queue, and the requests sent ahead to its busy workers if any.
fn waiting(pool: &PoolReport) -> String {
    match pool.sent_ahead {
        0 => pool.waiting.to_string(),
        ahead => format!("{} (+{ahead} sent ahead)", pool.waiting),
    }
}

fn render_pool(page: &mut String, pool: &PoolReport) {
    let name = escape(&pool.name);
    let health = match (&pool.failing, pool.ready) {
        (Some(reason), _) => format!("<span class=\"bad\">failing: {}</span>", escape(reason)),
        (None, true) => "<span class=\"good\">ready</span>".to_string(),
        (None, false) => "<span class=\"bad\">no live worker</span>".to_string(),
    };
    let _ = writeln!(
        page,
        "<h2 id=\"pool-{name}\">Pool {name}</h2>\n<p>{health}</p>\n\
         <div class=\"charts\" data-pool=\"{name}\"></div>"
    );
    page.push_str(
        "<table class=\"summary\"><tr><th>workers</th><th>busy / total slots</th>\
        <th>waiting / queue max</th><th>queue timeout</th><th>request timeout</th>\
        <th>requests served</th><th>last exit</th></tr>\n",
    );
    let _ = writeln!(
        page,
        "<tr><td class=\"n\">{}</td><td class=\"n\">{} / {}</td><td class=\"n\">{} / {}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr></table>",
        pool.workers,
        pool.busy_slots,
        pool.total_slots,
        waiting(pool),
        pool.queue_max,
        duration(pool.queue_timeout_ms as f64 / 1000.0),
        duration(pool.request_timeout_ms as f64 / 1000.0),
        pool.requests_served,
        pool.last_exit_reason.unwrap_or("&ndash;"),
    );
    let counts: Vec<String> = pool
        .states
        .iter()
        .map(|(state, count)| format!("{count} {state}"))
        .collect();
    let _ = writeln!(
        page,
        "<p>Scoreboard: <span class=\"board\">{}</span> ({})</p>",
        if pool.scoreboard.is_empty() {
            "&ndash;".to_string()
        } else {
            escape(&pool.scoreboard)
        },
        counts.join(", ")
    );
    page.push_str(
        "<table class=\"workers\"><tr><th>worker</th><th>pid</th><th>state</th>\
        <th>served</th><th>slots</th><th>RSS</th><th>age</th><th>last request</th>\
        <th>current request</th><th>running for</th><th>request id</th></tr>\n",
    );
    for worker in &pool.processes {
        render_worker(page, worker);
    }
    page.push_str("</table>\n");
    if !pool.recent_exits.is_empty() {
        page.push_str(
            "<h3>Recent exits</h3>\n<table class=\"exits\"><tr><th>worker</th>\
            <th>pid</th><th>reason</th><th>served</th><th>lived</th><th>when</th></tr>\n",
        );
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        for exit in &pool.recent_exits {
            let _ = writeln!(
                page,
                "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{} ago</td></tr>",
                exit.worker,
                exit.pid.map_or("?".to_string(), |p| p.to_string()),
                exit.reason,
                exit.requests_served,
                exit.lived_seconds.map_or("?".to_string(), duration),
                duration((now - exit.at).max(0.0)),
            );
        }
        page.push_str("</table>\n");
    }
}

fn render_worker(page: &mut String, worker: &WorkerReport) {
    let state = worker.state.as_str();
    let rss = worker.rss_bytes.map_or("&ndash;".to_string(), mebibytes);
    // An external pool's "worker" is a socket of a server paddock does not run.
    let pid = match (worker.pid, worker.cpu) {
        (0, _) => "external".to_string(),
        (pid, None) => pid.to_string(),
        (pid, Some(cpu)) => format!("{pid} &middot; on CPU {cpu}"),
    };
    // CPU time and peak memory of its last request, for workers that report them.
    let last = worker.last_request.map_or("&ndash;".to_string(), |last| {
        format!(
            "CPU {} &middot; {} peak",
            duration(last.cpu_seconds),
            mebibytes(last.peak_memory_bytes)
        )
    });
    let rows = worker.current.len().max(1);
    for i in 0..rows {
        let (request, age, id) = match worker.current.get(i) {
            Some(r) => (
                format!("<code>{} {}</code>", escape(&r.method), escape(&r.path)),
                match r.cpu_seconds {
                    Some(cpu) => format!("{} (CPU {})", duration(r.age_seconds), duration(cpu)),
                    None => duration(r.age_seconds),
                },
                escape(&r.request_id),
            ),
            None => ("&ndash;".into(), "&ndash;".into(), "&ndash;".into()),
        };
        if i == 0 {
            let _ = writeln!(
                page,
                "<tr class=\"{state}\"><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{state}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{} / {}</td><td class=\"n\">{rss}</td>\
                 <td class=\"n\">{}</td><td>{last}</td><td>{request}</td><td class=\"n\">{age}</td>\
                 <td>{id}</td></tr>",
                worker.worker,
                pid,
                worker.requests_served,
                worker.busy_slots,
                worker.slots,
                duration(worker.age_seconds),
            );
        } else {
            // A threaded worker runs several requests: one extra row per request.
            let _ = writeln!(
                page,
                "<tr class=\"{state}\"><td colspan=\"8\"></td><td>{request}</td>\
                 <td class=\"n\">{age}</td><td>{id}</td></tr>"
            );
        }
    }
}

/// Escapes text for HTML element content and attribute values: request paths come from clients.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`, `3 d 04 h`.
fn duration(seconds: f64) -> String {
    if seconds < 1.0 {
        return format!("{} ms", (seconds * 1000.0).round() as u64);
    }
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let s = seconds as u64;
    match s {
        0..3600 => format!("{} min {:02} s", s / 60, s % 60),
        3600..86400 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {:02} h", s / 86400, s % 86400 / 3600),
    }
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::activity::{RunningView, WorkerState};
    use crate::metrics::report::LastRequestView;
    use std::collections::BTreeMap;

    fn report(path: &str) -> StatusReport {
        let worker = WorkerReport {
            worker: 3,
            pid: 4242,
            state: WorkerState::Busy,
            requests_served: 17,
            slots: 1,
            busy_slots: 1,
            rss_bytes: Some(24 << 20),
            cpu: Some(1),
            age_seconds: 75.0,
            started_at: 0.0,
            current: vec![RunningView {
                request_id: "abc-1".into(),
                method: "GET".into(),
                path: path.into(),
                age_seconds: 0.25,
                cpu_seconds: Some(0.125),
            }],
            last_request: Some(LastRequestView {
                cpu_seconds: 0.012,
                peak_memory_bytes: 6 << 20,
            }),
        };
        StatusReport {
            version: "0.1.0",
            pid: 1,
            uptime_seconds: 3700.0,
            started_at: 0.0,
            pools: vec![PoolReport {
                name: "php".into(),
                workers: 1,
                states: BTreeMap::from([("busy", 1)]),
                scoreboard: "W".into(),
                total_slots: 1,
                busy_slots: 1,
                idle_slots: 0,
                waiting: 2,
                sent_ahead: 0,
                queue_max: 100,
                queue_timeout_ms: 30_000,
                request_timeout_ms: 60_000,
                failing: None,
                ready: true,
                requests_served: 17,
                last_exit_reason: None,
                processes: vec![worker],
                recent_exits: Vec::new(),
            }],
        }
    }

    #[test]
    fn shows_each_worker_and_its_current_request() {
        let page = render(&report("/slow.php"), None);
        // The pid, and the CPU the worker is pinned to.
        assert!(
            page.contains("<td class=\"n\">4242 &middot; on CPU 1</td>"),
            "{page}"
        );
        assert!(page.contains("<code>GET /slow.php</code>"));
        assert!(page.contains("24.0 MiB"));
        assert!(page.contains("1 min 15 s"));
        assert!(page.contains("1 h 01 min"));
        // What the last request cost, and the CPU time of the running one.
        assert!(page.contains("CPU 12 ms &middot; 6.0 MiB peak"), "{page}");
        assert!(page.contains("250 ms (CPU 125 ms)"), "{page}");
        assert!(!page.contains("http-equiv"));
    }

    #[test]
    fn client_supplied_paths_are_escaped() {
        let page = render(&report("/<script>alert(1)</script>"), Some(5));
        // The page's own chart script is the only one.
        assert!(!page.contains("<script>alert"));
        assert_eq!(page.matches("<script>").count(), 1);
        assert!(page.contains("&lt;script&gt;alert(1)"));
        assert!(page.contains("content=\"5\""));
    }
}
