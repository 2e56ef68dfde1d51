//! Log lines as php-fpm writes them to its error_log:
//! `[27-Nov-2026 08:00:00] NOTICE: ready to handle connections`. Used when
//! tfpm runs a php-fpm config, so that what reads php-fpm's log (people,
//! log parsers, php-src's own FPM tests) reads tfpm's. Levels map as
//! php-fpm's: INFO is NOTICE, WARN is WARNING. A line's fields, if any,
//! follow its message as `key=value`.

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The php-fpm error_log format.
pub struct FpmFormat;

impl<S, N> FormatEvent<S, N> for FpmFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Line::default();
        event.record(&mut line);
        let now = SystemTime::now();
        let offset = crate::sys::os::utc_offset(now);
        writeln!(
            writer,
            "[{}] {}: {}{}",
            timestamp(now, offset),
            level_name(*event.metadata().level()),
            line.message,
            line.fields
        )
    }
}

/// php-fpm's level words.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "NOTICE",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// An event's message and its other fields.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

/// The months as C's `%b` prints them.
pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `27-Nov-2026 08:00:00`, local time (`offset` seconds east of UTC).
pub fn timestamp(at: SystemTime, offset: i32) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        + offset as i64;
    let (days, rest) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (year, month, day) = civil(days);
    format!(
        "{day:02}-{}-{year} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The calendar date (year, month 1..=12, day 1..=31) of a day count since
/// 1970-01-01, in the proleptic Gregorian calendar.
pub(crate) fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_as_php_fpm_writes_them() {
        let at = UNIX_EPOCH + Duration::from_secs(1_795_737_600); // 2026-11-27 00:00:00 UTC
        assert_eq!(timestamp(at, 0), "27-Nov-2026 00:00:00");
        assert_eq!(timestamp(at, 3600 + 61), "27-Nov-2026 01:01:01");
        assert_eq!(timestamp(at, -1), "26-Nov-2026 23:59:59");
        assert_eq!(timestamp(UNIX_EPOCH, 0), "01-Jan-1970 00:00:00");
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400), 0),
            "29-Feb-2000 00:00:00"
        );
    }
}
