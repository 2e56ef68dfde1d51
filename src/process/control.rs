//! The control channel between the master and each worker process (a
//! socket pair the worker inherits): the messages, typed, and their
//! framing. A message is one line, a verb and an optional byte count; a
//! count is followed by that many bytes of body.
//!
//! ```text
//! worker -> master   ready | idle | retired | sum | metrics N\n<N bytes>
//! master -> worker   retire | hand-over | metrics | sum N\n<N bytes>
//! ```
//!
//! A body of metrics is a [`Report`] in its own encoding.
//!
//! Connections themselves travel on a second socket pair
//! ([`crate::sys::fdpass`]), as descriptors.
//!
//! The worker's end of the channel ([`MasterLink`]) is here too: the
//! worker's status page asks the master through it.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::oneshot;

use crate::server::metrics::Report;

/// What a worker tells its master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToMaster {
    /// PHP is up and the worker accepts connections.
    Ready,
    /// An ondemand pool's worker has had nothing to do for its idle timeout.
    Idle,
    /// Retired by a reload, it no longer accepts connections.
    Retired,
    /// Asks for the whole pool's metrics (for its status page).
    PoolMetricsPlease,
    /// Its own metrics, as the master asked.
    Metrics(Box<Report>),
}

/// What the master tells a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToWorker {
    /// Stop accepting (a reload started new workers), then say `Retired`.
    /// With `hand_over`, each kept connection then goes back to the master
    /// once it has nothing in flight, for a successor; without, it closes.
    Retire {
        /// Whether kept connections go to a successor rather than close.
        hand_over: bool,
    },
    /// Asks for the worker's own metrics.
    MetricsPlease,
    /// Every worker's metrics of the pool, summed.
    PoolMetrics(Box<Report>),
}

/// A message's encoding on the channel.
pub trait Message: Sized {
    /// The message's line, and its body if it has one.
    fn encode(&self) -> Vec<u8>;
    /// The message of verb `verb` with `body` (a body comes only after a
    /// byte count); None for one this side does not know.
    fn decode(verb: &str, body: Option<String>) -> Option<Self>;
}

impl Message for ToMaster {
    fn encode(&self) -> Vec<u8> {
        match self {
            ToMaster::Ready => frame("ready", None),
            ToMaster::Idle => frame("idle", None),
            ToMaster::Retired => frame("retired", None),
            ToMaster::PoolMetricsPlease => frame("sum", None),
            ToMaster::Metrics(report) => frame("metrics", Some(&report.encode())),
        }
    }

    fn decode(verb: &str, body: Option<String>) -> Option<Self> {
        Some(match (verb, body) {
            ("ready", None) => ToMaster::Ready,
            ("idle", None) => ToMaster::Idle,
            ("retired", None) => ToMaster::Retired,
            ("sum", None) => ToMaster::PoolMetricsPlease,
            ("metrics", Some(text)) => ToMaster::Metrics(Box::new(Report::decode(&text)?)),
            _ => return None,
        })
    }
}

impl Message for ToWorker {
    fn encode(&self) -> Vec<u8> {
        match self {
            ToWorker::Retire { hand_over: false } => frame("retire", None),
            ToWorker::Retire { hand_over: true } => frame("hand-over", None),
            ToWorker::MetricsPlease => frame("metrics", None),
            ToWorker::PoolMetrics(report) => frame("sum", Some(&report.encode())),
        }
    }

    fn decode(verb: &str, body: Option<String>) -> Option<Self> {
        Some(match (verb, body) {
            ("retire", None) => ToWorker::Retire { hand_over: false },
            ("hand-over", None) => ToWorker::Retire { hand_over: true },
            ("metrics", None) => ToWorker::MetricsPlease,
            ("sum", Some(text)) => ToWorker::PoolMetrics(Box::new(Report::decode(&text)?)),
            _ => return None,
        })
    }
}

fn frame(verb: &str, body: Option<&str>) -> Vec<u8> {
    match body {
        None => format!("{verb}\n").into_bytes(),
        Some(body) => format!("{verb} {}\n{body}", body.len()).into_bytes(),
    }
}

/// The largest body read: a worker's metrics are a few KiB.
const MAX_BODY: usize = 16 << 20;

/// Reads the next message. Ok(None) at the end of the channel;
/// `Err(InvalidData)` for a line this side cannot read, after which the
/// channel is still in step (a message's body is always read whole).
pub async fn read<M: Message, R: AsyncBufRead + Unpin>(rd: &mut R) -> io::Result<Option<M>> {
    let mut line = String::new();
    if rd.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let verb = words.next().unwrap_or_default().to_string();
    let body = match words.next().map(str::parse::<usize>) {
        None => None,
        Some(Ok(len)) if len <= MAX_BODY => {
            let mut body = vec![0; len];
            rd.read_exact(&mut body).await?;
            Some(String::from_utf8_lossy(&body).into_owned())
        }
        Some(_) => return Err(unknown(&line)),
    };
    M::decode(&verb, body)
        .map(Some)
        .ok_or_else(|| unknown(&line))
}

fn unknown(line: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "unexpected message on the control channel: {:?}",
            line.trim_end()
        ),
    )
}

/// The worker's end of its channel to the master.
pub struct MasterLink {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    /// One question to the master at a time; its answer goes here.
    asking: tokio::sync::Mutex<()>,
    pub(super) answer: std::sync::Mutex<Option<oneshot::Sender<Report>>>,
}

impl MasterLink {
    pub(super) fn new(writer: OwnedWriteHalf) -> MasterLink {
        MasterLink {
            writer: tokio::sync::Mutex::new(writer),
            asking: tokio::sync::Mutex::new(()),
            answer: std::sync::Mutex::new(None),
        }
    }

    pub(super) async fn send(&self, message: &ToMaster) -> std::io::Result<()> {
        self.writer.lock().await.write_all(&message.encode()).await
    }

    /// Every worker's metrics, summed by the master: the whole pool, for
    /// the status page. None if the master does not answer in time.
    pub async fn pool_metrics(&self) -> Option<Report> {
        let _one = self.asking.lock().await;
        let (tx, rx) = oneshot::channel();
        *self.answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        self.send(&ToMaster::PoolMetricsPlease).await.ok()?;
        tokio::time::timeout(std::time::Duration::from_secs(2), rx)
            .await
            .ok()?
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(pool: &str, accepted: u64) -> Box<Report> {
        let counts = crate::php::PoolSnapshot {
            accepted,
            ..Default::default()
        };
        Box::new(Report {
            pools: vec![crate::server::metrics::PoolReport {
                name: pool.into(),
                counts,
            }],
            ..Report::default()
        })
    }

    async fn all<M: Message>(bytes: &[u8]) -> Vec<io::Result<Option<M>>> {
        let mut rd = tokio::io::BufReader::new(bytes);
        let mut out = Vec::new();
        loop {
            let next = read::<M, _>(&mut rd).await;
            let end = matches!(next, Ok(None));
            out.push(next);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn every_message_reads_back_as_it_was_written() {
        let to_master = [
            ToMaster::Ready,
            ToMaster::Idle,
            ToMaster::Retired,
            ToMaster::PoolMetricsPlease,
            ToMaster::Metrics(report("x y", 7)),
            ToMaster::Metrics(Box::default()),
        ];
        let bytes: Vec<u8> = to_master.iter().flat_map(Message::encode).collect();
        let read: Vec<ToMaster> = all::<ToMaster>(&bytes)
            .await
            .into_iter()
            .map_while(|m| m.expect("a message"))
            .collect();
        assert_eq!(read, to_master);

        let to_worker = [
            ToWorker::Retire { hand_over: false },
            ToWorker::Retire { hand_over: true },
            ToWorker::MetricsPlease,
            ToWorker::PoolMetrics(report("www", 3)),
        ];
        let bytes: Vec<u8> = to_worker.iter().flat_map(Message::encode).collect();
        let read: Vec<ToWorker> = all::<ToWorker>(&bytes)
            .await
            .into_iter()
            .map_while(|m| m.expect("a message"))
            .collect();
        assert_eq!(read, to_worker);
    }

    #[tokio::test]
    async fn an_unknown_line_is_an_error_and_the_next_message_still_reads() {
        let read = all::<ToMaster>(b"hello\nretire\nmetrics 2\nabmetrics 6\npeak 9").await;
        assert_eq!(read.len(), 5);
        assert!(read[0].is_err() && read[1].is_err(), "{read:?}");
        assert!(read[2].is_err(), "not a report: {read:?}");
        let peak = Report {
            memory_peak: 9,
            ..Report::default()
        };
        assert_eq!(
            read[3].as_ref().ok(),
            Some(&Some(ToMaster::Metrics(Box::new(peak))))
        );
        assert!(matches!(read[4], Ok(None)));
    }

    #[tokio::test]
    async fn a_body_cut_short_ends_the_channel_with_an_error() {
        let read = all::<ToWorker>(b"sum 10\nabc").await;
        assert!(read[0].is_err(), "{read:?}");
    }
}
