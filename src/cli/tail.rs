//! `ferrofeed tail`: the other end of the NATS sink. Reads a JetStream
//! stream through `ferrofeed::sink::nats::NatsReader` and prints one JSON line
//! per stored event (docs/nats.md).

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use ferrofeed::sink::nats::{Deliver, NatsAuth, NatsReader};

#[derive(Debug, clap::Args)]
pub(crate) struct TailArgs {
    /// The NATS server, e.g. nats://127.0.0.1:4222. Credentials: --nats-creds,
    /// or FERROFEED_NATS_USER and FERROFEED_NATS_PASSWORD, FERROFEED_NATS_TOKEN
    /// or FERROFEED_NATS_CREDS in the environment, so that they stay out of
    /// the process list (userinfo in the URL works too).
    #[arg(value_name = "URL")]
    url: String,
    /// A NATS credentials file (user JWT and NKey seed). Overrides
    /// FERROFEED_NATS_* in the environment.
    #[arg(long, value_name = "FILE")]
    nats_creds: Option<std::path::PathBuf>,
    /// Subjects to read; `*` matches one token, `>` the rest, e.g.
    /// 'ferrofeed.binance.spot.trade.>' or 'ferrofeed.*.*.status.>'.
    #[arg(long, default_value = "ferrofeed.>")]
    subject: String,
    /// The JetStream stream (`[nats] stream` of the recorder).
    #[arg(long, default_value = "FERROFEED")]
    stream: String,
    /// Where to start: everything the stream holds, only new events, or the
    /// last event of each subject.
    #[arg(long, value_enum, default_value = "all")]
    deliver: DeliverArg,
    /// Exit after printing this many events.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Exit once everything stored so far is printed (or nothing arrives for
    /// --idle) instead of following new events.
    #[arg(long)]
    no_follow: bool,
    /// With --no-follow: how long to wait for a first or next event.
    #[arg(long, default_value = "2s", value_parser = crate::parse_duration)]
    idle: Duration,
    /// Print {"subject","msg_id","seq","event"} instead of the bare event.
    #[arg(long)]
    meta: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DeliverArg {
    /// Everything the stream still holds.
    All,
    /// Events stored after tail starts.
    New,
    /// The last event of each subject, then new ones.
    Last,
}

pub(crate) async fn run_tail(a: TailArgs) -> anyhow::Result<()> {
    let deliver = match a.deliver {
        DeliverArg::All => Deliver::All,
        DeliverArg::New => Deliver::New,
        DeliverArg::Last => Deliver::LastPerSubject,
    };
    let auth = match &a.nats_creds {
        Some(file) => NatsAuth::CredsFile(file.clone()),
        None => NatsAuth::from_env()?,
    };
    let mut reader = NatsReader::open_with(&a.url, &auth, &a.stream, &a.subject, deliver).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let shutdown = crate::cli::signal::shutdown();
    tokio::pin!(shutdown);
    let mut printed = 0u64;
    loop {
        if a.count.is_some_and(|n| printed >= n) {
            break;
        }
        let next = async {
            if a.no_follow {
                tokio::time::timeout(a.idle, reader.next()).await.ok().flatten()
            } else {
                reader.next().await
            }
        };
        let m = tokio::select! {
            _ = &mut shutdown => break,
            m = next => match m {
                None => break,
                Some(m) => m.context("reading the stream")?,
            },
        };
        let line = if a.meta {
            let event: serde_json::Value = serde_json::from_slice(&m.payload)
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&m.payload).into_owned()));
            serde_json::json!({"subject": m.subject, "msg_id": m.msg_id, "seq": m.stream_sequence, "event": event})
                .to_string()
                .into_bytes()
        } else {
            m.payload.to_vec()
        };
        let r = out.write_all(&line).and_then(|()| out.write_all(b"\n"));
        if let Err(e) = r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(anyhow::Error::new(e).context("writing to standard output"));
        }
        printed += 1;
        // Following: show each event as it comes; not following: flush at the end.
        if (!a.no_follow || m.pending == 0) && out.flush().is_err() {
            return Ok(());
        }
        if a.no_follow && m.pending == 0 {
            break;
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to standard output"))
        }
        _ => Ok(()),
    }
}
