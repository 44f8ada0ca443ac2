//! Pool sharding under a per-connection character budget
//! (`ConnLimits::max_stream_chars`), against a server on 127.0.0.1 that
//! enforces the budget the way Bybit does (the total characters of the topics
//! subscribed on one connection) and refuses any request that would exceed it.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrofeed_engine::{
    BackoffConfig, ConnectSpec, ConnectionConfig, EventKind, EventReceiver, Native, Overflow, Pool, PoolConfig,
    PoolError, queue,
};
use ferrofeed_venues::bybit::{BybitRules, Category};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);
/// Characters of topics one connection may hold, here and on the server.
const BUDGET: usize = 1000;

/// What the server saw.
#[derive(Debug, Default)]
struct Seen {
    /// Topics held per connection, in accept order.
    held: Vec<Vec<String>>,
    /// The most characters any connection ever held.
    most_chars: usize,
    /// Requests refused for exceeding the budget.
    refused: usize,
}

fn chars(topics: &[String]) -> usize {
    topics.iter().map(|t| t.chars().count()).sum()
}

async fn server() -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/v5/public/linear", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            let n = {
                let mut s = seen.lock().expect("lock");
                s.held.push(Vec::new());
                s.held.len() - 1
            };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                while let Some(Ok(m)) = ws.next().await {
                    let Message::Text(t) = m else { continue };
                    let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
                    let op = v["op"].as_str().unwrap_or_default().to_string();
                    let args: Vec<String> = v["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(String::from))
                        .collect();
                    let reply = {
                        let mut s = seen.lock().expect("lock");
                        match op.as_str() {
                            "ping" => json!({"success": true, "ret_msg": "pong", "conn_id": "c", "op": "ping"}),
                            "subscribe" if chars(&s.held[n]) + chars(&args) > BUDGET => {
                                s.refused += 1;
                                json!({"success": false, "ret_msg": format!("args length exceeds {BUDGET} characters"),
                                    "conn_id": "c", "req_id": v["req_id"], "op": "subscribe"})
                            }
                            "subscribe" => {
                                s.held[n].extend(args);
                                s.most_chars = s.most_chars.max(chars(&s.held[n]));
                                json!({"success": true, "ret_msg": "subscribe", "conn_id": "c", "req_id": v["req_id"], "op": "subscribe"})
                            }
                            "unsubscribe" => {
                                s.held[n].retain(|t| !args.contains(t));
                                json!({"success": true, "ret_msg": "", "conn_id": "c", "req_id": v["req_id"], "op": "unsubscribe"})
                            }
                            _ => continue,
                        }
                    };
                    if ws.send(Message::Text(reply.to_string().into())).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn pool(url: &str, max_connections: Option<usize>) -> (Pool<Native>, EventReceiver) {
    let mut cc = ConnectionConfig::new(ConnectSpec::new(url));
    cc.seed = Some(5);
    cc.backoff = BackoffConfig {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        ..BackoffConfig::default()
    };
    // The shipped public rules, with a small budget to make sharding visible.
    let mut venue = BybitRules::public(Category::Linear);
    venue.max_stream_chars = Some(BUDGET);
    // The option category's count cap; characters bind first here.
    venue.max_streams = 2000;
    let cfg = PoolConfig { name: "test:chars".into(), connection: cc, max_streams_per_conn: None, max_connections };
    let (tx, rx) = queue(4096, Overflow::Block);
    (Pool::new(Native::new(), Arc::new(venue), cfg, tx, Arc::new(AtomicU64::new(0))), rx)
}

/// A topic of exactly `len` characters.
fn topic(kind: &str, i: usize, len: usize) -> String {
    let head = format!("{kind}.{i:03}.");
    format!("{head}{}", "X".repeat(len - head.len()))
}

/// Reads events until the pool is settled; any refusal or error fails the test.
async fn settle(pool: &Pool<Native>, rx: &mut EventReceiver) {
    while !pool.is_settled() {
        let ev = match tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
            Ok(ev) => ev.expect("events alive"),
            Err(_) => continue,
        };
        match ev.kind {
            EventKind::SubscriptionFailed { stream, msg, .. } => panic!("{stream} refused: {msg}"),
            EventKind::Error { msg, raw } => panic!("{msg}: {raw}"),
            _ => {}
        }
    }
}

async fn settled(pool: &Pool<Native>, rx: &mut EventReceiver) {
    tokio::time::timeout(WAIT, settle(pool, rx)).await.expect("the pool settles");
}

/// 25 topics of 120 characters under a 1000-character budget: 8 per
/// connection (960 characters), so 4 connections, though the count cap (2000)
/// would put them all on one. Short topics then fill the room left on the
/// existing connections before any new one opens; the connection limit is
/// checked by characters; a topic longer than the whole budget is refused up
/// front. The server never refuses anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_sharded_by_characters_and_none_is_refused() {
    let (url, seen) = server().await;
    let (mut pool, mut rx) = pool(&url, Some(4));
    assert_eq!(pool.char_budget(), Some(BUDGET));
    assert_eq!(pool.cap(), 2000);

    let long: Vec<String> = (0..25).map(|i| topic("orderbook.1000", i, 120)).collect();
    pool.subscribe(&long).await.expect("subscribe");
    settled(&pool, &mut rx).await;
    let shards = pool.assignment();
    assert_eq!(shards.iter().map(Vec::len).collect::<Vec<_>>(), vec![8, 8, 8, 1]);
    assert_eq!(pool.active_shards(), 4);

    // 40 characters are left on each of the first three connections: two
    // 20-character topics each; the rest goes to the fourth. No new connection.
    let short: Vec<String> = (0..10).map(|i| topic("t", i, 20)).collect();
    pool.subscribe(&short).await.expect("subscribe");
    settled(&pool, &mut rx).await;
    let shards = pool.assignment();
    assert_eq!(shards.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 10, 5]);
    assert!(shards.iter().all(|s| chars(s) <= BUDGET), "{:?}", shards.iter().map(|s| chars(s)).collect::<Vec<_>>());
    assert_eq!(chars(&shards[0]), BUDGET);

    // The fourth connection holds 200 characters: six more long topics fit
    // there, eight would need a fifth connection, beyond the limit of four.
    let more: Vec<String> = (25..33).map(|i| topic("orderbook.1000", i, 120)).collect();
    let err = pool.subscribe(&more).await.expect_err("a fifth connection is needed");
    assert_eq!(err, PoolError::Exhausted { connections: 4, per_connection: 2000, requested: 8, free: 6 });
    assert!(more.iter().all(|t| pool.references(t) == 0), "nothing taken on error");
    pool.subscribe(&more[..6]).await.expect("six fit");
    settled(&pool, &mut rx).await;
    assert_eq!(pool.assignment()[3].len(), 11);

    // Capacity freed by an unsubscribe is reused, by characters.
    pool.unsubscribe(&long[..2]).await.expect("unsubscribe");
    pool.subscribe(&more[6..]).await.expect("fits where two left");
    settled(&pool, &mut rx).await;
    let shards = pool.assignment();
    assert!(more[6..].iter().all(|t| shards[0].contains(t)), "{shards:?}");
    assert_eq!(pool.active_shards(), 4);

    let too_long = topic("orderbook.1000", 99, BUDGET + 1);
    assert_eq!(
        pool.subscribe(std::slice::from_ref(&too_long)).await,
        Err(PoolError::StreamTooLong { stream: too_long.clone(), chars: BUDGET + 1, budget: BUDGET })
    );

    // The server's view: what the pool assigned, within budget, nothing refused.
    {
        let s = seen.lock().expect("lock");
        assert_eq!(s.refused, 0);
        assert!(s.most_chars <= BUDGET, "{}", s.most_chars);
        assert_eq!(s.held.len(), 4, "connections opened");
        // Connections may be accepted in any order: compare as sets.
        let mut held: Vec<Vec<String>> = s
            .held
            .iter()
            .map(|h| {
                let mut h = h.clone();
                h.sort();
                h
            })
            .collect();
        held.sort();
        let mut assigned: Vec<Vec<String>> = shards
            .iter()
            .map(|a| {
                let mut a = a.clone();
                a.sort();
                a
            })
            .collect();
        assigned.sort();
        assert_eq!(held, assigned);
    }
    pool.disconnect_all().await;
}

/// Without a character budget, only the count cap shards (as before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_character_budget_the_count_cap_alone_shards() {
    let (url, _seen) = server().await;
    let mut cc = ConnectionConfig::new(ConnectSpec::new(&url));
    cc.seed = Some(5);
    let mut venue = BybitRules::public(Category::Linear);
    venue.max_stream_chars = None;
    venue.max_streams = 10;
    let cfg =
        PoolConfig { name: "test:count".into(), connection: cc, max_streams_per_conn: None, max_connections: None };
    let (tx, mut rx) = queue(4096, Overflow::Block);
    let mut pool = Pool::new(Native::new(), Arc::new(venue), cfg, tx, Arc::new(AtomicU64::new(0)));
    assert_eq!(pool.char_budget(), None);
    // Short topics, so the server's budget never binds either.
    let topics: Vec<String> = (0..25).map(|i| topic("t", i, 20)).collect();
    pool.subscribe(&topics).await.expect("subscribe");
    settled(&pool, &mut rx).await;
    assert_eq!(pool.assignment().iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);
    pool.disconnect_all().await;
}
