//! The text log line, written by authd's own formatter: the layout of
//! tracing-subscriber's default (`TIMESTAMP LEVEL span{fields}: target:
//! fields`), without its styling wrappers, which cost a third of a line's
//! formatting even with colours off, and with a timestamp written digit by
//! digit. At the default level every request writes one such line, so its
//! cost is every request's.
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The text format. `ansi` colours the level, on a terminal.
#[derive(Clone, Copy, Debug)]
pub struct TextLine {
    pub ansi: bool,
}

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str(&timestamp(SystemTime::now()))?;
        let meta = event.metadata();
        writer.write_str(level(*meta.level(), self.ansi))?;
        // The request's context, when no span carries it (text lines
        // without span export: see `crate::telemetry::spans_per_request`),
        // written as its span would have been.
        let mut any = false;
        REQUEST
            .try_with(|request| -> fmt::Result {
                any = true;
                request.write(&mut writer)
            })
            .unwrap_or(Ok(()))?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                writer.write_str(span.name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
                any = true;
            }
        }
        if any {
            writer.write_char(' ')?;
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

tokio::task_local! {
    /// The request being served, for every line logged while it is.
    pub static REQUEST: RequestContext;
}

/// What the request's span (`http` or `rpc`) would carry: a text line
/// without span export gets it from here instead, which costs a task-local
/// per poll rather than a span (its registration, its fields formatted at
/// creation, an enter and an exit per poll): about 4% of an HTTP
/// introspection's instructions.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub request: Served,
    pub request_id: http::HeaderValue,
}

/// What is being served.
#[derive(Clone, Debug)]
pub enum Served {
    /// An HTTP request to the shim.
    Http {
        method: http::Method,
        uri: http::Uri,
    },
    /// A gRPC call from outside; `uri`'s path names the method.
    Rpc { uri: http::Uri },
}

impl RequestContext {
    /// `http{method=POST path=/oauth/introspect request_id="…"}:` or
    /// `rpc{method=/authd.v1.OAuth/Introspect request_id="…"}:`, as
    /// [`TextFields`] writes the spans' fields.
    fn write(&self, writer: &mut Writer<'_>) -> fmt::Result {
        match &self.request {
            Served::Http { method, uri } => {
                writer.write_str("http{method=")?;
                writer.write_str(method.as_str())?;
                writer.write_str(" path=")?;
                writer.write_str(uri.path())?;
            }
            Served::Rpc { uri } => {
                writer.write_str("rpc{method=")?;
                writer.write_str(uri.path())?;
            }
        }
        write!(
            writer,
            " request_id={:?}}}:",
            self.request_id.to_str().unwrap_or_default()
        )
    }
}

/// Fields as `name=value`, values in their Debug form (so strings are
/// quoted and escaped: a value cannot start a line of its own), the
/// message bare: tracing-subscriber's layout, without the styling wrapper
/// around each name.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextFields;

impl<'writer> FormatFields<'writer> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = FieldWriter {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct FieldWriter<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl FieldWriter<'_> {
    fn separate(&mut self) -> fmt::Result {
        if self.first {
            self.first = false;
            Ok(())
        } else {
            self.writer.write_char(' ')
        }
    }
}

impl Visit for FieldWriter<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = self.separate().and_then(|()| {
            if field.name() == "message" {
                write!(self.writer, "{value:?}")
            } else {
                write!(self.writer, "{}={value:?}", field.name())
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_err() {
            return;
        }
        self.result = self.separate().and_then(|()| {
            self.writer.write_str(field.name())?;
            self.writer.write_char('=')?;
            let mut digits = [0u8; 20];
            let mut at = digits.len();
            let mut n = value;
            loop {
                at -= 1;
                digits[at] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            self.writer
                .write_str(std::str::from_utf8(&digits[at..]).unwrap_or("?"))
        });
    }
}

/// The level, right-aligned in five columns, with the spaces around it.
fn level(level: Level, ansi: bool) -> &'static str {
    match (level, ansi) {
        (Level::TRACE, false) => " TRACE ",
        (Level::DEBUG, false) => " DEBUG ",
        (Level::INFO, false) => "  INFO ",
        (Level::WARN, false) => "  WARN ",
        (Level::ERROR, false) => " ERROR ",
        (Level::TRACE, true) => " \x1b[35mTRACE\x1b[0m ",
        (Level::DEBUG, true) => " \x1b[34mDEBUG\x1b[0m ",
        (Level::INFO, true) => "  \x1b[32mINFO\x1b[0m ",
        (Level::WARN, true) => "  \x1b[33mWARN\x1b[0m ",
        (Level::ERROR, true) => " \x1b[31mERROR\x1b[0m ",
    }
}

/// RFC 3339 in UTC with microseconds, `2026-12-04T19:44:15.123456Z`.
fn timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    let mut line = String::with_capacity(27);
    push_digits(&mut line, year.clamp(0, 9999) as u64, 4);
    line.push('-');
    push_digits(&mut line, month as u64, 2);
    line.push('-');
    push_digits(&mut line, day as u64, 2);
    line.push('T');
    push_digits(&mut line, of_day / 3600, 2);
    line.push(':');
    push_digits(&mut line, of_day / 60 % 60, 2);
    line.push(':');
    push_digits(&mut line, of_day % 60, 2);
    line.push('.');
    push_digits(&mut line, u64::from(since.subsec_micros()), 6);
    line.push('Z');
    line
}

fn push_digits(out: &mut String, mut n: u64, width: usize) {
    let mut buf = [b'0'; 6];
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.push_str(std::str::from_utf8(&buf[..width]).unwrap_or("0"));
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard
/// Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// What a subscriber with this format writes for one event in a span.
    fn written(ansi: bool) -> String {
        use std::sync::{Arc, Mutex};
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(ansi)
            .fmt_fields(TextFields)
            .event_format(TextLine { ansi })
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("http", method = "GET", request_id = "r1");
            span.in_scope(|| {
                tracing::info!(
                    status = 200u64,
                    latency_us = 1234u64,
                    path = "/a\nb",
                    "request"
                );
            });
        });
        let bytes = out.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_has_the_default_layout_with_values_escaped() {
        let line = written(false);
        let (stamp, rest) = line.split_at(27);
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{line}"
        );
        assert_eq!(
            rest,
            "  INFO http{method=\"GET\" request_id=\"r1\"}: authd::telemetry::line::tests: request status=200 latency_us=1234 path=\"/a\\nb\"\n"
        );
        // One line: a value cannot start another.
        assert_eq!(line.matches('\n').count(), 1);
        assert!(written(true).contains("\x1b[32mINFO\x1b[0m"));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let at = UNIX_EPOCH + Duration::from_micros(1_796_412_255_123_456);
        assert_eq!(timestamp(at), "2026-12-04T19:24:15.123456Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        // A leap day, and the last microsecond of a year.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00.000000Z");
        let end = UNIX_EPOCH + Duration::from_micros(1_735_689_599_999_999);
        assert_eq!(timestamp(end), "2024-12-31T23:59:59.999999Z");
    }
}
