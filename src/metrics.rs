//! A Prometheus text-format endpoint over a feed's statistics.
//!
//! Everything is read from [`FeedStats`] at scrape time, so the endpoint adds
//! nothing to the data path. The exposition format is written here directly:
//! every value is a snapshot computed on demand, which a metrics registry
//! would only duplicate.
//!
//! Metric families (labels in braces):
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `ferrofeed_connection_up{venue,market,conn}` | gauge | 1 while the socket is active |
//! | `ferrofeed_connection_state{venue,market,conn,state}` | gauge | 1 for the current lifecycle state |
//! | `ferrofeed_connection_epoch{...}` | gauge | socket generation |
//! | `ferrofeed_connection_messages_total{...}` | counter | data frames received |
//! | `ferrofeed_connection_bytes_total{...}` | counter | bytes of data frames |
//! | `ferrofeed_connection_reconnects_total{...}` | counter | sockets opened after the first |
//! | `ferrofeed_connection_gaps_total{...}` | counter | gaps reported on its streams |
//! | `ferrofeed_connection_duplicates_total{...}` | counter | repeated messages dropped (rotation overlaps, venue re-sends) |
//! | `ferrofeed_connection_unsolicited_total{...}` | counter | data frames for streams it did not subscribe, dropped |
//! | `ferrofeed_connection_streams{...}` | gauge | streams held |
//! | `ferrofeed_recovery_seconds{venue,market}` | histogram | time from a lost socket to the first data on the next |
//! | `ferrofeed_ratelimit_messages_used{...}` / `_limit` | gauge | client messages in the venue's current window |
//! | `ferrofeed_stream_messages_total{venue,market,stream}` | counter | data frames per stream |
//! | `ferrofeed_stream_last_message_age_seconds{...}` | gauge | time since the stream's last frame |
//! | `ferrofeed_book_synced{venue,market,symbol}` | gauge | 1 while the local book is in sync |
//! | `ferrofeed_book_resyncs_total{...}` | counter | times the book lost sync |
//! | `ferrofeed_book_updates_total{...}` | counter | diffs applied |
//! | `ferrofeed_events_total{type}` | counter | events handed to the consumer |
//! | `ferrofeed_gaps_total` | counter | gap events |
//! | `ferrofeed_decode_errors_total` | counter | frames that could not be decoded |
//! | `ferrofeed_queue_depth{queue}` / `ferrofeed_queue_capacity{queue}` | gauge | engine events waiting for the consumer (`queue="public"`: every venue's market data) |
//! | `ferrofeed_queue_dropped_total{queue}` | counter | events the queue dropped (drop-oldest policy) |
//! | `ferrofeed_queue_bytes{queue}` / `_peak_bytes` / `_max_bytes` | gauge | bytes waiting now, the most ever, and the byte budget |
//! | `ferrofeed_rest_weight_used{venue,market}` / `_limit` | gauge | REST weight in the current window |
//! | `ferrofeed_connection_attempts_used{venue,host}` / `_limit` | gauge | connection attempts in the current window |
//! | `ferrofeed_snapshot_requests_total`, `ferrofeed_snapshot_failures_total`, `ferrofeed_snapshot_rate_limited_total` | counter | REST book snapshots |
//! | `ferrofeed_book_resubscribes_total`, `ferrofeed_book_resubscribe_timeouts_total` | counter | book streams restarted for a venue snapshot |

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ferrofeed_engine::State;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::feed::{FeedStats, SharedStats};

fn state_name(s: State) -> &'static str {
    match s {
        State::Connecting => "connecting",
        State::Authenticating => "authenticating",
        State::Subscribing => "subscribing",
        State::Active => "active",
        State::Reconnecting => "reconnecting",
        State::Closing => "closing",
        State::Closed => "closed",
    }
}

const STATES: [State; 7] = [
    State::Connecting,
    State::Authenticating,
    State::Subscribing,
    State::Active,
    State::Reconnecting,
    State::Closing,
    State::Closed,
];

/// Escapes a label value (backslash, double quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn line(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", esc(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {v}");
    }
}

/// Renders `stats` in the Prometheus text exposition format (0.0.4).
pub fn render(stats: &FeedStats) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
    let mut o = Out(String::with_capacity(4096));
    let conns: Vec<(&str, String, &str, &crate::feed::ConnStats)> = stats
        .conns
        .iter()
        .map(|((venue, id), c)| (*venue, id.to_string(), c.market.map_or("", |m| m.name()), c))
        .collect();
    let per_conn = |o: &mut Out, name: &str, kind: &str, help: &str, f: &dyn Fn(&crate::feed::ConnStats) -> u64| {
        o.head(name, kind, help);
        for (venue, id, market, c) in &conns {
            o.line(name, &[("venue", venue), ("market", market), ("conn", id)], f(c));
        }
    };
    per_conn(&mut o, "ferrofeed_connection_up", "gauge", "1 while the connection's socket is active.", &|c| {
        u64::from(c.state == State::Active)
    });
    o.head("ferrofeed_connection_state", "gauge", "1 for the connection's current lifecycle state.");
    for (venue, id, market, c) in &conns {
        for s in STATES {
            let labels = [("venue", *venue), ("market", *market), ("conn", id.as_str()), ("state", state_name(s))];
            o.line("ferrofeed_connection_state", &labels, u64::from(c.state == s));
        }
    }
    per_conn(&mut o, "ferrofeed_connection_epoch", "gauge", "Socket generation of the connection.", &|c| c.epoch);
    per_conn(&mut o, "ferrofeed_connection_messages_total", "counter", "Data frames received.", &|c| c.messages);
    per_conn(&mut o, "ferrofeed_connection_bytes_total", "counter", "Bytes of data frames received.", &|c| c.bytes);
    per_conn(&mut o, "ferrofeed_connection_reconnects_total", "counter", "Sockets opened after the first.", &|c| {
        c.reconnects
    });
    per_conn(
        &mut o,
        "ferrofeed_connection_gaps_total",
        "counter",
        "Gaps reported on the connection's streams.",
        &|c| c.gaps,
    );
    per_conn(
        &mut o,
        "ferrofeed_connection_duplicates_total",
        "counter",
        "Repeated messages dropped (rotation overlaps, venue re-sends).",
        &|c| c.duplicates,
    );
    per_conn(
        &mut o,
        "ferrofeed_connection_unsolicited_total",
        "counter",
        "Data frames for streams the connection did not subscribe, dropped.",
        &|c| c.unsolicited,
    );
    per_conn(&mut o, "ferrofeed_connection_streams", "gauge", "Streams the connection holds.", &|c| c.streams as u64);
    o.head("ferrofeed_recovery_seconds", "histogram", "Time from a lost socket to the first data on the next.");
    for (m, r) in &stats.recovery {
        let (venue, market) = (m.venue_name(), m.name());
        let mut cum = 0;
        for (i, n) in r.buckets.iter().enumerate() {
            cum += n;
            let le = match ferrofeed_engine::recovery::RECOVERY_BUCKETS_MS.get(i) {
                Some(ms) => format!("{}", *ms as f64 / 1000.0),
                None => "+Inf".to_string(),
            };
            o.line("ferrofeed_recovery_seconds_bucket", &[("venue", venue), ("market", market), ("le", &le)], cum);
        }
        o.line("ferrofeed_recovery_seconds_sum", &[("venue", venue), ("market", market)], r.sum.as_secs_f64());
        o.line("ferrofeed_recovery_seconds_count", &[("venue", venue), ("market", market)], r.count);
    }
    per_conn(
        &mut o,
        "ferrofeed_ratelimit_messages_used",
        "gauge",
        "Client messages sent in the venue's current window.",
        &|c| c.msgs_in_window.0 as u64,
    );
    per_conn(
        &mut o,
        "ferrofeed_ratelimit_messages_limit",
        "gauge",
        "The venue's client-message limit per window.",
        &|c| c.msgs_in_window.1 as u64,
    );

    o.head("ferrofeed_stream_messages_total", "counter", "Data frames received per stream.");
    for ((m, s), st) in &stats.streams {
        o.line(
            "ferrofeed_stream_messages_total",
            &[("venue", m.venue_name()), ("market", m.name()), ("stream", s)],
            st.messages,
        );
    }
    o.head("ferrofeed_stream_last_message_age_seconds", "gauge", "Seconds since the stream's last data frame.");
    for ((m, s), st) in &stats.streams {
        let age = if st.last_ns > 0 { (now - st.last_ns).max(0) as f64 / 1e9 } else { f64::INFINITY };
        let age = if age.is_finite() { format!("{age:.3}") } else { "+Inf".to_string() };
        o.line(
            "ferrofeed_stream_last_message_age_seconds",
            &[("venue", m.venue_name()), ("market", m.name()), ("stream", s)],
            age,
        );
    }

    let books = &stats.books;
    o.head("ferrofeed_book_synced", "gauge", "1 while the local book is in sync with the venue.");
    for ((m, s), b) in books {
        let labels = [("venue", m.venue_name()), ("market", m.name()), ("symbol", s.as_str())];
        o.line("ferrofeed_book_synced", &labels, u64::from(b.synced));
    }
    o.head("ferrofeed_book_resyncs_total", "counter", "Times the local book lost sync.");
    for ((m, s), b) in books {
        o.line(
            "ferrofeed_book_resyncs_total",
            &[("venue", m.venue_name()), ("market", m.name()), ("symbol", s)],
            b.resyncs,
        );
    }
    o.head("ferrofeed_book_updates_total", "counter", "Diffs applied to the local book.");
    for ((m, s), b) in books {
        o.line(
            "ferrofeed_book_updates_total",
            &[("venue", m.venue_name()), ("market", m.name()), ("symbol", s)],
            b.applied,
        );
    }

    o.head("ferrofeed_events_total", "counter", "Events handed to the consumer, by type.");
    for (t, n) in &stats.events_by_type {
        o.line("ferrofeed_events_total", &[("type", t)], n);
    }
    o.head("ferrofeed_gaps_total", "counter", "Gap events.");
    o.line("ferrofeed_gaps_total", &[], stats.gaps);
    o.head("ferrofeed_decode_errors_total", "counter", "Frames that could not be decoded.");
    o.line("ferrofeed_decode_errors_total", &[], stats.decode_errors);
    o.head("ferrofeed_queue_depth", "gauge", "Engine events waiting for the consumer.");
    for (queue, q) in &stats.queue {
        o.line("ferrofeed_queue_depth", &[("queue", queue)], q.0);
    }
    o.head("ferrofeed_queue_capacity", "gauge", "Capacity of the engine event queue.");
    for (queue, q) in &stats.queue {
        o.line("ferrofeed_queue_capacity", &[("queue", queue)], q.1);
    }
    o.head("ferrofeed_queue_dropped_total", "counter", "Events the queue dropped (drop-oldest policy).");
    for (queue, n) in &stats.queue_dropped {
        o.line("ferrofeed_queue_dropped_total", &[("queue", queue)], n);
    }
    o.head("ferrofeed_queue_bytes", "gauge", "Bytes of engine events waiting for the consumer.");
    for (queue, b) in &stats.queue_bytes {
        o.line("ferrofeed_queue_bytes", &[("queue", queue)], b.0);
    }
    o.head("ferrofeed_queue_peak_bytes", "gauge", "The most bytes ever waiting in the queue.");
    for (queue, b) in &stats.queue_bytes {
        o.line("ferrofeed_queue_peak_bytes", &[("queue", queue)], b.1);
    }
    o.head("ferrofeed_queue_max_bytes", "gauge", "The queue's byte budget.");
    for (queue, b) in &stats.queue_bytes {
        o.line("ferrofeed_queue_max_bytes", &[("queue", queue)], b.2);
    }

    o.head("ferrofeed_rest_weight_used", "gauge", "REST request weight spent in the current window.");
    for (m, used, _) in &stats.rest_weight {
        if let Some(u) = used {
            o.line("ferrofeed_rest_weight_used", &[("venue", m.venue_name()), ("market", m.name())], u);
        }
    }
    o.head("ferrofeed_rest_weight_limit", "gauge", "REST request weight allowed per window.");
    for (m, _, limit) in &stats.rest_weight {
        o.line("ferrofeed_rest_weight_limit", &[("venue", m.venue_name()), ("market", m.name())], limit);
    }
    o.head("ferrofeed_connection_attempts_used", "gauge", "Connection attempts in the current window, per host.");
    for (venue, h, used, _) in &stats.attempts {
        if let Some(u) = used {
            o.line("ferrofeed_connection_attempts_used", &[("venue", venue), ("host", h)], u);
        }
    }
    o.head("ferrofeed_connection_attempts_limit", "gauge", "Connection attempts allowed per window, per host.");
    for (venue, h, _, limit) in &stats.attempts {
        o.line("ferrofeed_connection_attempts_limit", &[("venue", venue), ("host", h)], limit);
    }
    let (req, fail, limited) = stats.snapshot_requests;
    o.head("ferrofeed_snapshot_requests_total", "counter", "REST book snapshots requested.");
    o.line("ferrofeed_snapshot_requests_total", &[], req);
    o.head("ferrofeed_snapshot_failures_total", "counter", "REST book snapshot requests that failed.");
    o.line("ferrofeed_snapshot_failures_total", &[], fail);
    o.head("ferrofeed_snapshot_rate_limited_total", "counter", "REST book snapshot requests refused with 429 or 418.");
    o.line("ferrofeed_snapshot_rate_limited_total", &[], limited);
    let (resubscribes, timeouts) = stats.book_resubscribes;
    o.head("ferrofeed_book_resubscribes_total", "counter", "Book streams restarted for a venue snapshot.");
    o.line("ferrofeed_book_resubscribes_total", &[], resubscribes);
    o.head("ferrofeed_book_resubscribe_timeouts_total", "counter", "Book restarts asked again after a timeout.");
    o.line("ferrofeed_book_resubscribe_timeouts_total", &[], timeouts);
    o.0
}

/// Serves `GET /metrics` on `addr` (port 0: any free port) until the task is
/// aborted; returns the bound address.
pub async fn serve(addr: SocketAddr, stats: SharedStats) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let stats = stats.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let stats = stats.clone();
                    async move {
                        let resp = if req.method() == hyper::Method::GET && req.uri().path() == "/metrics" {
                            let body = render(&stats.lock());
                            Response::builder()
                                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                                .body(Full::new(Bytes::from(body)))
                        } else {
                            Response::builder()
                                .status(StatusCode::NOT_FOUND)
                                .body(Full::new(Bytes::from_static(b"not found\n")))
                        };
                        Ok::<_, hyper::http::Error>(resp.unwrap_or_default())
                    }
                });
                let io = hyper_util::rt::TokioIo::new(tcp);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(esc("x\ny"), "x\\ny");
    }

    #[test]
    fn empty_stats_render_every_family_header() {
        let text = render(&FeedStats::default());
        for name in ["ferrofeed_connection_up", "ferrofeed_queue_depth", "ferrofeed_snapshot_requests_total"] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
        assert!(text.contains("ferrofeed_gaps_total 0\n"));
        assert!(text.contains("# TYPE ferrofeed_queue_depth gauge\n"));
    }
}
