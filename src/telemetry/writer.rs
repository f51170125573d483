//! The log writer: lines are formatted on the request's thread and queued;
//! a thread of its own writes them to stderr. Under load it writes what has
//! gathered once a millisecond, in one `write`, instead of being woken for
//! each line and writing each on its own (a futex wake and a context switch
//! on the request's side, and a `write` on its own, per request, which was
//! a third of authd's system calls per HTTP introspection). When the queue
//! stays empty it sleeps until the next line, so an idle service does not
//! wake at all.
//!
//! The queue is bounded: when it is full, requests wait for room rather than
//! lines being dropped (an operator's log is not lossy). A line is written
//! at most [`GATHER`] after it was queued, and every queued line is written
//! before the process exits ([`LogWriterGuard`]).
use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::Duration;

/// How long the writer lets lines gather, while they keep coming, before it
/// writes them out together.
const GATHER: Duration = Duration::from_millis(1);

/// Most bytes written in one call.
const MAX_WRITE: usize = 256 * 1024;

/// How long shutdown waits for the writer to write out the queue (a stderr
/// nobody reads must not hold the exit up for ever).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

enum Message {
    Line(Vec<u8>),
    Shutdown,
}

/// Queues each line for the writer thread (tracing-subscriber's
/// `MakeWriter`; each event's line arrives in one `write_all`), or, when no
/// thread could be started, writes it to stderr itself rather than lose it.
#[derive(Clone)]
pub struct LogWriter {
    queue: Option<SyncSender<Message>>,
}

/// Stops the writer thread once every line queued before it was written.
pub struct LogWriterGuard {
    queue: SyncSender<Message>,
    done: Receiver<()>,
}

/// Starts the writer thread, writing to `out`, with room for `lines`
/// queued lines. If no thread can be started, lines go to stderr from the
/// thread that logs them, and there is no guard.
pub fn spawn<W: Write + Send + 'static>(
    out: W,
    lines: usize,
    thread_name: &str,
) -> (LogWriter, Option<LogWriterGuard>) {
    let (queue, receiver) = std::sync::mpsc::sync_channel(lines);
    let (finished, done) = std::sync::mpsc::sync_channel(1);
    let started = std::thread::Builder::new()
        .name(thread_name.to_owned())
        .spawn(move || {
            write_queue(&receiver, out);
            let _ = finished.send(());
        });
    match started {
        Ok(_) => (
            LogWriter {
                queue: Some(queue.clone()),
            },
            Some(LogWriterGuard { queue, done }),
        ),
        Err(e) => {
            eprintln!("authd: no log writer thread ({e}); lines are written as they are logged");
            (LogWriter { queue: None }, None)
        }
    }
}

/// The writer thread's loop: waits for a line, then, while lines keep
/// coming, gathers them for [`GATHER`] at a time and writes each gathering
/// in one call.
fn write_queue<W: Write>(queue: &Receiver<Message>, mut out: W) {
    let mut pending: Vec<u8> = Vec::with_capacity(64 * 1024);
    // Nothing queued: sleep until a line comes.
    while let Ok(Message::Line(line)) = queue.recv() {
        pending.extend_from_slice(&line);
        loop {
            // Take whatever else is queued, then write it all at once.
            let stop = loop {
                match queue.try_recv() {
                    Ok(Message::Line(line)) => {
                        pending.extend_from_slice(&line);
                        if pending.len() >= MAX_WRITE {
                            flush(&mut out, &mut pending);
                        }
                    }
                    Ok(Message::Shutdown) | Err(TryRecvError::Disconnected) => break true,
                    Err(TryRecvError::Empty) => break false,
                }
            };
            flush(&mut out, &mut pending);
            if stop {
                return;
            }
            // Lines came: let the next ones gather rather than be woken by
            // each. Senders wake only a thread that waits on the queue, so
            // this sleep costs them nothing.
            std::thread::sleep(GATHER);
            match queue.try_recv() {
                Ok(Message::Line(line)) => pending.extend_from_slice(&line),
                Ok(Message::Shutdown) | Err(TryRecvError::Disconnected) => return,
                // A quiet millisecond: back to waiting for the next line.
                Err(TryRecvError::Empty) => break,
            }
        }
    }
}

/// Writes `pending` out and empties it. A failed write is dropped: there is
/// nowhere left to report it.
fn flush<W: Write>(out: &mut W, pending: &mut Vec<u8>) {
    if !pending.is_empty() {
        let _ = out.write_all(pending);
        let _ = out.flush();
        pending.clear();
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &self.queue {
            // Waits for room when the queue is full; fails only once the
            // writer has stopped (after shutdown), when the line is dropped.
            Some(queue) => {
                let _ = queue.send(Message::Line(buf.to_vec()));
                Ok(buf.len())
            }
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for LogWriterGuard {
    fn drop(&mut self) {
        // Behind every line already queued: the writer writes those first.
        if send_within(&self.queue, Message::Shutdown, SHUTDOWN_WAIT) {
            let _ = self.done.recv_timeout(SHUTDOWN_WAIT);
        }
    }
}

/// Sends `message`, waiting at most `wait` for room (`SyncSender` has no
/// `send_timeout` on stable Rust). False if it could not be sent.
fn send_within(queue: &SyncSender<Message>, mut message: Message, wait: Duration) -> bool {
    let until = std::time::Instant::now() + wait;
    loop {
        match queue.try_send(message) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(m)) => {
                if std::time::Instant::now() >= until {
                    return false;
                }
                message = m;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records each write call separately.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_queued_line_is_written_in_order_by_shutdown_and_bursts_share_writes() {
        let recorder = Recorder::default();
        let (writer, guard) = spawn(recorder.clone(), 16, "log-writer-test");
        let lines: Vec<String> = (0..2000).map(|i| format!("line {i}\n")).collect();
        for line in &lines {
            writer.clone().write_all(line.as_bytes()).unwrap();
        }
        drop(guard);
        let writes = recorder.0.lock().unwrap().clone();
        let written: Vec<u8> = writes.concat();
        assert_eq!(String::from_utf8(written).unwrap(), lines.concat());
        // 2,000 lines through a queue of 16 came out in far fewer writes
        // than lines: each write carried what had gathered.
        assert!(
            writes.len() < 1000,
            "{} writes for 2000 lines",
            writes.len()
        );
    }

    #[test]
    fn a_line_queued_while_idle_is_written_without_waiting_for_more() {
        let recorder = Recorder::default();
        let (writer, _guard) = spawn(recorder.clone(), 16, "log-writer-test");
        writer.clone().write_all(b"alone\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while recorder.0.lock().unwrap().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was never written"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(recorder.0.lock().unwrap().concat(), b"alone\n");
    }
}
