//! One FastCGI connection.
//!
//! A reader task decodes records, runs them through the protocol state
//! machine ([`ConnState`]) and dispatches requests to the PHP pool. Records
//! go out through the connection's [`Outlet`]: the PHP thread (or the
//! reader) writes them itself when the socket takes them and nothing is
//! queued ahead, and a writer task sends whatever had to wait. Reader and
//! writer never wait on each other, so a script that writes before it reads
//! its body cannot deadlock the connection. Both bounded queues (output,
//! body chunks) carry backpressure to the socket on one side and to the PHP
//! thread on the other.
//!
//! Each request's life (its phase, its deadlines, who ends it) is the
//! protocol layer's ([`ConnState`]); this module is the I/O around it: the
//! reader runs the timer for the deadline [`ConnState::next_deadline`]
//! names, and each timeout that fires is logged with its name and costs
//! only what it must (the connection before any request, or else the one
//! request that stalled).
//!
//! Each request gets a tracing span with a per-process request id and its
//! script, entered by whatever logs about it: this module, and the PHP
//! thread that runs it. The bytes read and written, the timeouts and the
//! refusals are counted in [`super::metrics`].

mod handover;
mod outlet;
mod write;

pub(crate) use outlet::Outlet;

use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf, ReadHalf};
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit};
use tokio_util::codec::FramedRead;

use super::metrics::{self, TimeoutKind};
use super::sink::{body_channel, BodySender, FcgiSink};
use super::{ConnContext, Draining};
use crate::fcgi::codec::RecordCodec;
use crate::fcgi::conn::{ConnState, Event, Expired};
use crate::fcgi::error::{FcgiError, ProtocolError};
use crate::fcgi::nv::Params;
use crate::fcgi::record::{Out, ProtocolStatus, Record, RecordType};
use crate::php::{Abort, Pool, Request};
use handover::{Frames, Prefixed};
use write::write_loop;

/// The read buffer a connection starts with.
const READ_BUFFER: usize = 1024;
/// Output items queued per connection before PHP threads block.
const OUT_QUEUE: usize = 16;
/// STDIN chunks queued per request before the reader stops reading.
const BODY_QUEUE: usize = 4;
/// How long to drain input after closing our side (lingering close).
const LINGER: Duration = Duration::from_secs(5);

/// The answer to a request whose params were over a limit.
const PARAMS_TOO_LARGE: &[u8] =
    b"Status: 431 Request Header Fields Too Large\r\nContent-type: text/plain\r\n\r\nRequest header fields too large.\n";
/// The answer to a request whose params stream was malformed.
const PARAMS_MALFORMED: &[u8] =
    b"Status: 400 Bad Request\r\nContent-type: text/plain\r\n\r\nMalformed request parameters.\n";
/// The answer to a request whose params did not arrive in time.
const PARAMS_TIMED_OUT: &[u8] =
    b"Status: 408 Request Timeout\r\nContent-type: text/plain\r\n\r\nRequest parameters timed out.\n";

/// What the connection holds for one active request, besides its
/// protocol state: the ends of its channels to the PHP thread.
struct Entry {
    body: Option<BodySender>,
    abort: Arc<Abort>,
    /// The span its log lines go in.
    span: tracing::Span,
    /// Its place in the daemon's limit of requests in flight, given back
    /// when the entry goes.
    _slot: OwnedSemaphorePermit,
}

/// The active requests of one connection. Web servers keep one at a time
/// (nginx always uses id 1), so a short list beats a hash map.
#[derive(Default)]
struct Requests(Vec<(u16, Entry)>);

impl Requests {
    fn insert(&mut self, id: u16, entry: Entry) {
        self.remove(&id);
        self.0.push((id, entry));
    }

    fn get_mut(&mut self, id: &u16) -> Option<&mut Entry> {
        self.0.iter_mut().find(|(i, _)| i == id).map(|(_, e)| e)
    }

    fn remove(&mut self, id: &u16) -> Option<Entry> {
        let at = self.0.iter().position(|(i, _)| i == id)?;
        Some(self.0.swap_remove(at).1)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.0.iter_mut().map(|(_, e)| e)
    }
}

/// State shared by the reader and the writer.
struct Shared {
    state: ConnState,
    requests: Requests,
    /// The reader waits for a request to end (a drain, or a pipelined
    /// BEGIN_REQUEST): whoever ends one must wake it. Otherwise nobody
    /// does, so that a response costs no wake-up of the reader's thread.
    reader_waits: bool,
}

#[derive(Clone)]
struct SharedRef {
    inner: Arc<Mutex<Shared>>,
    /// Woken when an END_REQUEST is about to go out and the reader waits
    /// for one.
    ended: Arc<Notify>,
}

impl SharedRef {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A poisoned lock only means another task panicked mid-update; the
        // maps are still usable for closing the connection down.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits while request `id` is active with all its input read: a client
    /// that sends its next request on the same id before our END_REQUEST
    /// (pipelining) is served in turn, as php-fpm serves it.
    async fn wait_for_end(&self, id: u16) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            {
                let mut shared = self.lock();
                if !shared.state.is_active(id) || !shared.state.input_complete(id) {
                    return;
                }
                shared.reader_waits = true;
            }
            ended.await;
        }
    }
}

/// Where a connection comes from: accepted here, or adopted from a
/// retiring worker with the input it had read and not handled.
pub enum Origin {
    /// Accepted by this worker from one of its listeners.
    Accepted,
    /// Handed over by a retiring worker: the bytes it had read from the
    /// connection and not handled, served before anything read here.
    Adopted(Bytes),
}

/// Serves one connection until the peer closes it, a protocol error, or a
/// timeout. `peer` is the web server's address (TCP), for the access log.
/// Returns the connection, with the input read from it and not handled,
/// when a draining server hands it over (with nothing in flight).
pub async fn serve_connection<S>(
    stream: S,
    pool: Pool,
    context: Arc<ConnContext>,
    peer: Option<std::net::IpAddr>,
    origin: Origin,
) -> Option<(S, Vec<u8>)>
where
    S: AsyncRead + AsyncWrite + AsFd + Send + Unpin + 'static,
{
    // PHP threads write to the socket through a descriptor of their own.
    let socket = stream.as_fd().try_clone_to_owned().ok();
    let (rd, wr) = tokio::io::split(stream);
    let head = match origin {
        Origin::Accepted => None,
        Origin::Adopted(head) => Some(head),
    };
    let state = match head {
        None => ConnState::new(context.conn, Instant::now()),
        Some(_) => ConnState::resumed(context.conn, Instant::now()),
    };
    let shared = SharedRef {
        inner: Arc::new(Mutex::new(Shared {
            state,
            requests: Requests::default(),
            reader_waits: false,
        })),
        ended: Arc::new(Notify::new()),
    };
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let (closing_tx, closing_rx) = watch::channel(false);
    let (gone_tx, gone_rx) = watch::channel(false);
    let (handover_tx, handover_rx) = watch::channel(false);
    let ends = write::Ends {
        closing: closing_tx,
        gone: gone_rx,
        handover: handover_rx,
    };
    let outlet = Arc::new(Outlet::new(socket, out_tx, shared.clone()));
    let writer = tokio::spawn(write_loop(wr, out_rx, outlet.clone(), ends));
    // Until the writer has seen a handover, its queue must not look closed.
    let queue_open = outlet.clone();
    let reader = Reader {
        pool,
        shared: shared.clone(),
        out: outlet,
        context,
        peer,
    };
    if let Some((rd, unread)) = reader.run(rd, head.unwrap_or_default(), closing_rx).await {
        // Nothing in flight: once the writer has sent what it holds, the
        // connection goes whole to another worker.
        let _ = handover_tx.send(true);
        let written = writer.await;
        drop(queue_open);
        if let Ok(Some(wr)) = written {
            return Some((rd.unsplit(wr), unread));
        }
        return None;
    }
    // EOF or a protocol error: nothing more is written (no END_REQUEST after
    // EOF), neither by a PHP thread itself nor by the writer, which hears of
    // it before any script is told: the scripts are aborted only then.
    queue_open.close();
    let _ = gone_tx.send(true);
    abort_all(&shared);
    drop(queue_open);
    let _ = writer.await;
    None
}

/// How the reading of a connection goes on.
enum Next {
    Record(Result<Record, FcgiError>),
    /// EOF, a timeout, or a drain with nothing in flight: close.
    End,
    /// A drain that hands connections over, with nothing in flight.
    HandOver,
}

/// The client is gone or broke the protocol: every running script is told.
fn abort_all(shared: &SharedRef) {
    for entry in shared.lock().requests.values_mut() {
        entry.abort.raise();
        entry.body = None;
    }
}

struct Reader {
    pool: Pool,
    shared: SharedRef,
    out: Arc<Outlet>,
    context: Arc<ConnContext>,
    peer: Option<std::net::IpAddr>,
}

impl Reader {
    /// Reads and dispatches records until the connection ends (None), or
    /// until a draining server hands it over: then the read half and the
    /// input read and not handled.
    async fn run<S: AsyncRead>(
        self,
        rd: ReadHalf<S>,
        head: Bytes,
        mut closing: watch::Receiver<bool>,
    ) -> Option<(ReadHalf<S>, Vec<u8>)> {
        // Small at first: an idle kept connection should cost little; the
        // codec reserves what a record needs.
        let rd = Counted(Prefixed::new(head, rd));
        let mut frames = FramedRead::with_capacity(rd, RecordCodec::default(), READ_BUFFER);
        loop {
            let next = tokio::select! {
                biased;
                _ = closing.changed() => {
                    linger(frames.into_inner().0.into_inner()).await;
                    return None;
                }
                next = self.next_record(&mut frames) => next,
            };
            let record = match next {
                Next::End => return None,
                Next::HandOver => return Some(handover::unread(frames)),
                Next::Record(Ok(record)) => record,
                Next::Record(Err(FcgiError::Io(e))) => {
                    tracing::debug!("connection read failed: {e}");
                    return None;
                }
                Next::Record(Err(e)) => {
                    tracing::warn!("closing connection: {e}");
                    return None;
                }
            };
            if record.kind == RecordType::BeginRequest {
                self.shared.wait_for_end(record.request_id).await;
            }
            let event = self.shared.lock().state.handle(record, Instant::now());
            match event {
                Ok(Some(event)) => self.dispatch(event).await,
                Ok(None) => {}
                Err(e) if e.failed_request().is_some() => {
                    // Framing is intact: only this request fails.
                    let id = e.failed_request().unwrap_or_default();
                    self.span_of(id)
                        .in_scope(|| tracing::warn!("rejecting a request: {e}"));
                    self.reject(id, params_answer(&e)).await;
                }
                Err(e) => {
                    tracing::warn!("closing connection after a protocol error: {e}");
                    return None;
                }
            }
        }
    }

    /// The next record; End at EOF, or when a timeout or a drain closes
    /// the connection; HandOver when a drain passes it on.
    async fn next_record<S: AsyncRead>(&self, frames: &mut Frames<ReadHalf<S>>) -> Next {
        loop {
            // A request ending changes which deadline applies (idle starts).
            let ended = self.shared.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let mut draining = self.context.draining.clone();
            let drain = *draining.borrow_and_update();
            if drain != Draining::No {
                // Set before looking at what is in flight: an end after
                // that look wakes us.
                self.shared.lock().reader_waits = true;
            }
            match drain {
                Draining::HandOver if self.nothing_in_flight() && handover::fits(frames) => {
                    return Next::HandOver;
                }
                Draining::Close if self.idle_after_a_request() => {
                    // Serve a request that is already here, else close.
                    return match tokio::time::timeout(Duration::ZERO, frames.next()).await {
                        Ok(Some(next)) => Next::Record(next),
                        Ok(None) | Err(_) => Next::End,
                    };
                }
                _ => {}
            }
            let deadline = self.deadline(drain != Draining::No);
            let timer = async {
                match deadline {
                    Some((at, expired)) => {
                        tokio::time::sleep_until(at.into()).await;
                        expired
                    }
                    None => std::future::pending().await,
                }
            };
            // FramedRead::next is cancel-safe: nothing read is lost when
            // another branch wins.
            // A request that just ended comes first: a drain then hands the
            // connection over before taking the next request, which the peer
            // may send the moment it has our END_REQUEST.
            tokio::select! {
                biased;
                _ = ended => {}
                _ = draining.changed(), if drain == Draining::No => {}
                next = frames.next() => return next.map_or(Next::End, Next::Record),
                expired = timer => {
                    if let Some(expired) = expired {
                        if self.expire(expired).await {
                            return Next::End;
                        }
                    }
                }
            }
        }
    }

    /// When to wake next, and for which timeout (`None`: only to look
    /// again). A request ends without waking the reader, so while requests
    /// run it looks again within an idle timeout, and from then on the
    /// idle timeout counts from the request's end.
    /// Also records, under the same lock, whether the reader waits for a
    /// request's end (`waits`: a drain).
    fn deadline(&self, waits: bool) -> Option<(Instant, Option<Expired>)> {
        let mut shared = self.shared.lock();
        shared.reader_waits = waits;
        let t = &self.context.timeouts;
        if let Some((at, expired)) = shared.state.next_deadline(t) {
            return Some((at, Some(expired)));
        }
        let idle = t.idle.filter(|_| shared.state.active() > 0)?;
        Some((Instant::now() + idle, None))
    }

    /// Whether no request is active: the connection may be handed over.
    fn nothing_in_flight(&self) -> bool {
        self.shared.lock().state.active() == 0
    }

    /// Whether the connection has served a request and has none in flight:
    /// a draining server may close it. (A new connection first gets to send
    /// the request it was opened for.)
    fn idle_after_a_request(&self) -> bool {
        self.shared.lock().state.is_idle()
    }

    /// Acts on a timeout; returns true if the connection must close.
    async fn expire(&self, expired: Expired) -> bool {
        let t = &self.context.timeouts;
        metrics::timeout(timeout_kind(expired));
        match expired {
            Expired::FirstByte => {
                let after = t.first_byte.unwrap_or_default();
                tracing::warn!("closing a connection that sent nothing {after:?} after accept (first-byte timeout)");
                true
            }
            Expired::Idle => {
                let after = t.idle.unwrap_or_default();
                tracing::debug!("closing a connection idle for {after:?} (idle timeout)");
                true
            }
            Expired::Params(id) => {
                let after = t.params.unwrap_or_default();
                self.span_of(id).in_scope(|| tracing::warn!("request {id}: PARAMS incomplete {after:?} after BEGIN_REQUEST (params timeout); answering 408"));
                self.cancel(id);
                self.reject(id, PARAMS_TIMED_OUT).await;
                false
            }
            Expired::Stdin(id) => {
                let after = t.stdin.unwrap_or_default();
                self.span_of(id).in_scope(|| {
                    tracing::warn!(
                        "request {id}: no STDIN for {after:?} (stdin timeout); aborting the request"
                    )
                });
                self.cancel(id);
                false
            }
        }
    }

    /// The span of request `id`, or none if it is not active.
    fn span_of(&self, id: u16) -> tracing::Span {
        let mut shared = self.shared.lock();
        let entry = shared.requests.get_mut(&id);
        entry.map_or_else(tracing::Span::none, |e| e.span.clone())
    }

    /// Stops reading input for a request and tells its script the client
    /// is gone; whoever owns the request still sends its END_REQUEST.
    fn cancel(&self, id: u16) {
        let mut shared = self.shared.lock();
        shared.state.cancel(id);
        if let Some(entry) = shared.requests.get_mut(&id) {
            // Raised for a request no thread has yet, it is never seen.
            entry.abort.raise();
            entry.body = None;
        }
    }

    async fn dispatch(&self, event: Event) {
        match event {
            Event::Begin { id, .. } => self.begin(id).await,
            Event::Params { id, params } => self.start(id, params).await,
            Event::Stdin { id, data } => self.body_chunk(id, data).await,
            Event::StdinEnd { id } => self.body_end(id),
            Event::Data { .. } | Event::DataEnd { .. } => {} // FILTER data is consumed, unused
            Event::Abort { id, dispatched } => self.abort(id, dispatched).await,
            Event::Reply(out) => {
                log_reply(&out);
                self.out.send([out]).await;
            }
        }
    }

    async fn begin(&self, id: u16) {
        let Some(slot) = self.context.request_slot() else {
            // Refused like the protocol's own refusals: the id never
            // becomes active, so the peer may begin it again at once.
            self.shared.lock().state.refuse(id);
            let end = Out::EndRequest {
                id,
                app_status: 0,
                protocol_status: ProtocolStatus::Overloaded,
            };
            self.out.send([end]).await;
            return;
        };
        let entry = Entry {
            body: None,
            abort: Arc::default(),
            span: request_span(),
            _slot: slot,
        };
        self.shared.lock().requests.insert(id, entry);
    }

    /// The params are complete: hand the request to a PHP thread.
    async fn start(&self, id: u16, params: Params) {
        let (body_tx, body_rx) = body_channel(BODY_QUEUE);
        let (abort, span, keep_conn) = {
            let mut shared = self.shared.lock();
            let keep_conn = shared.state.keeps_conn(id);
            let Some(entry) = shared.requests.get_mut(&id) else {
                return;
            };
            entry.body = Some(body_tx);
            (entry.abort.clone(), entry.span.clone(), keep_conn)
        };
        if !span.is_disabled() {
            span.record("script", script_of(&params));
        }
        if let Some(page) = self.context.status.as_ref().filter(|p| p.is_for(&params)) {
            let response = page.answer(&params).await;
            self.cancel(id);
            self.answer(id, response).await;
            return;
        }
        let request = Request {
            span,
            keep_conn,
            params: self.context.with_env(params),
            body: Box::new(body_rx),
            sink: Arc::new(FcgiSink::new(id, self.out.clone())),
            abort,
            client_ip: self.peer,
        };
        if self.pool.submit(request).await.is_err() {
            self.reject(id, b"Status: 503 Service Unavailable\r\nContent-type: text/plain\r\n\r\nShutting down.\n")
                .await;
        }
    }

    async fn body_chunk(&self, id: u16, data: Bytes) {
        let tx = self
            .shared
            .lock()
            .requests
            .get_mut(&id)
            .and_then(|e| e.body.as_ref().map(BodySender::port));
        let Some(tx) = tx else { return };
        let sent = tx.send(data).await;
        let mut shared = self.shared.lock();
        // While the script is slow to read, the peer is not the one late.
        shared.state.body_taken(id, Instant::now());
        if let Some(entry) = shared.requests.get_mut(&id).filter(|_| sent.is_err()) {
            // The script is done with its body; the rest is dropped.
            entry.body = None;
        }
    }

    fn body_end(&self, id: u16) {
        if let Some(entry) = self.shared.lock().requests.get_mut(&id) {
            entry.body = None;
        }
    }

    async fn abort(&self, id: u16, dispatched: bool) {
        {
            let mut shared = self.shared.lock();
            let Some(entry) = shared.requests.get_mut(&id) else {
                return;
            };
            entry.abort.raise();
            entry.body = None;
        }
        if !dispatched {
            // No PHP thread owns it yet: the reply is ours to send.
            self.end_now(id).await;
        }
        // Otherwise the PHP thread sends the one END_REQUEST when it stops.
    }

    /// Answers a request that never reached PHP with a canned response.
    async fn reject(&self, id: u16, response: &'static [u8]) {
        self.answer(id, Bytes::from_static(response)).await;
    }

    /// Answers request `id` with a whole CGI response, without PHP.
    async fn answer(&self, id: u16, response: Bytes) {
        metrics::response_class(metrics::status_of(&response));
        self.out.send(end_records(id, response)).await;
    }

    /// Ends request `id` with an empty response.
    async fn end_now(&self, id: u16) {
        self.out.send(end_records(id, Bytes::new())).await;
    }
}

/// A whole response of the server's own: `response`, then the end of
/// STDOUT and the END_REQUEST.
fn end_records(id: u16, response: Bytes) -> impl Iterator<Item = Out> {
    let body = (!response.is_empty()).then_some(Out::Stdout { id, data: response });
    let end = [
        Out::Stdout {
            id,
            data: Bytes::new(),
        },
        Out::EndRequest {
            id,
            app_status: 0,
            protocol_status: ProtocolStatus::RequestComplete,
        },
    ];
    body.into_iter().chain(end)
}

/// The number of the next request, counted from 1 for the whole process.
static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// A new request's span: its id now, its script once the params are in.
fn request_span() -> tracing::Span {
    let request_id = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
    tracing::info_span!("request", request_id, script = tracing::field::Empty)
}

/// The script a request names, as the web server sent it.
fn script_of(params: &Params) -> String {
    let script = params
        .get(b"SCRIPT_FILENAME")
        .or_else(|| params.get(b"SCRIPT_NAME"));
    String::from_utf8_lossy(script.map_or(&[][..], |s| &s[..])).into_owned()
}

fn timeout_kind(expired: Expired) -> TimeoutKind {
    match expired {
        Expired::FirstByte => TimeoutKind::FirstByte,
        Expired::Idle => TimeoutKind::Idle,
        Expired::Params(_) => TimeoutKind::Params,
        Expired::Stdin(_) => TimeoutKind::Stdin,
    }
}

/// A reader that counts the bytes it reads in the metrics.
struct Counted<R>(R);

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            metrics::bytes_in(buf.filled().len() - before);
        }
        polled
    }
}

/// Management answers and refusals leave a trace at debug level.
fn log_reply(out: &Out) {
    match out {
        Out::EndRequest {
            id,
            protocol_status,
            ..
        } => tracing::debug!("refusing request {id}: {protocol_status:?}"),
        Out::GetValuesResult(values) => tracing::debug!("answering GET_VALUES: {values:?}"),
        Out::UnknownType(kind) => tracing::debug!("answering UNKNOWN_TYPE for record type {kind}"),
        _ => {}
    }
}

/// The canned answer to a request whose params were refused.
fn params_answer(e: &ProtocolError) -> &'static [u8] {
    match e {
        ProtocolError::ParamsTruncated { .. } => PARAMS_MALFORMED,
        _ => PARAMS_TOO_LARGE,
    }
}

/// After our side is shut, read and discard until the peer closes, so that it
/// gets our response instead of a reset.
async fn linger<S: AsyncRead>(mut rd: ReadHalf<S>) {
    let mut scratch = vec![0u8; 8192];
    let drain = async { while matches!(rd.read(&mut scratch).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
