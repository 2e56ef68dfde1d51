//! The access.format renderer against lines php-fpm 8.2 writes for the same
//! request, and its messages for the formats it refuses.

use super::*;

fn params(name: &[u8]) -> Option<Vec<u8>> {
    match name {
        b"HTTP_HOST" => Some(b"example.org".to_vec()),
        b"EMPTY" => Some(Vec::new()),
        _ => None,
    }
}

/// UTC only, enough for the tests: the default format and `%Y-%m-%d`.
fn strftime(format: &[u8], at: i64) -> Vec<u8> {
    let text = match format {
        b"%d/%b/%Y:%H:%M:%S %z" if at == 1_700_000_000 => "14/Nov/2023:22:13:20 +0000",
        b"%d/%b/%Y:%H:%M:%S %z" => "14/Nov/2023:22:13:21 +0000",
        b"%Y-%m-%d" => "2023-11-14",
        other => return [b"<", other, b">"].concat(),
    };
    text.as_bytes().to_vec()
}

fn headers() -> &'static [Vec<u8>] {
    static HEADERS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    HEADERS.get_or_init(|| {
        vec![
            b"X-Powered-By: PHP/8.2.32".to_vec(),
            b"Content-type: text/html; charset=UTF-8".to_vec(),
            b"X-Empty: ".to_vec(),
        ]
    })
}

/// A GET of /index.php?a=1&b=2 that took 1.234567 s.
fn record<'a>() -> Record<'a> {
    Record {
        remote_ip: Some("127.0.0.1".into()),
        auth_user: b"",
        method: b"GET",
        request_uri: b"/index.php",
        query_string: b"a=1&b=2",
        script_filename: b"/srv/www/index.php",
        content_length: 0,
        status: 200,
        started: 1_700_000_000,
        ended: 1_700_000_001,
        duration: Duration::from_micros(1_234_567),
        cpu: CpuTime {
            user: Duration::from_millis(300),
            system: Duration::from_millis(100),
        },
        memory: 2 * 1024 * 1024 + 5,
        pool: "www",
        pid: 4242,
        parent_pid: 4000,
        param: &params,
        headers: headers(),
        strftime: &strftime,
    }
}

fn render_with<'a>(format: &str, edit: impl FnOnce(&mut Record<'a>)) -> String {
    let mut record = record();
    edit(&mut record);
    let line = AccessFormat::parse(format).unwrap().render(&record);
    String::from_utf8(line.bytes).unwrap()
}

fn render(format: &str) -> String {
    render_with(format, |_| {})
}

#[test]
fn the_default_format() {
    assert_eq!(
        render(DEFAULT_FORMAT),
        "127.0.0.1 -  14/Nov/2023:22:13:20 +0000 \"GET /index.php\" 200\n"
    );
    let user = render_with(DEFAULT_FORMAT, |r| {
        r.auth_user = b"alice";
        r.remote_ip = None;
    });
    assert_eq!(
        user,
        "- - alice 14/Nov/2023:22:13:20 +0000 \"GET /index.php\" 200\n"
    );
}

#[test]
fn every_plain_token() {
    assert_eq!(
        render("%% %f %l %m %n %p %P %q %Q %r %R %s %u."),
        "% /srv/www/index.php 0 GET www 4242 4000 a=1&b=2 ? /index.php 127.0.0.1 200 .\n"
    );
    let empty = render_with("[%f][%m][%q][%Q][%u]", |r| {
        r.script_filename = b"";
        r.method = b"";
        r.query_string = b"";
    });
    assert_eq!(empty, "[-][-][][][]\n");
}

#[test]
fn durations_cpu_and_memory_in_every_unit() {
    assert_eq!(
        render("%d %{seconds}d %{milli}d %{MILLISECONDS}d %{mili}d %{miliseconds}d %{micro}d %{microseconds}d"),
        "1.235 1.235 1234.567 1234.567 1234.567 1234.567 1234567 1234567\n"
    );
    assert_eq!(
        render("%C %{total}C %{user}C %{system}C"),
        "32.40 32.40 24.30 8.10\n"
    );
    assert_eq!(
        render("%M %{bytes}M %{kilo}M %{kilobytes}M %{mega}M %{megabytes}M"),
        "2097157 2097157 2048 2048 2 2\n"
    );
}

#[test]
fn params_headers_and_times() {
    assert_eq!(
        render("%{HTTP_HOST}e|%{EMPTY}e|%{NOPE}e"),
        "example.org||-\n"
    );
    assert_eq!(
        render("%{Content-type}o|%{Content-Type}o|%{X-Powered-By}o|%{X-Empty}o"),
        "text/html; charset=UTF-8|-|PHP/8.2.32|-\n"
    );
    // php-fpm's matching: the name anywhere in the header, ": " after
    // as many bytes as the name has.
    assert_eq!(render("%{type}o"), "-\n");
    let quirk = render_with("%{b}o", |r| r.headers = &[]);
    assert_eq!(quirk, "-\n");
    assert_eq!(
        render("%t|%T|%{%Y-%m-%d}t|%{}t"),
        "14/Nov/2023:22:13:20 +0000|14/Nov/2023:22:13:21 +0000|2023-11-14|14/Nov/2023:22:13:20 +0000\n"
    );
}

#[test]
fn header_name_matched_the_php_fpm_way() {
    let odd = vec![b"a: b".to_vec()];
    assert_eq!(render_with("%{b}o", |r| r.headers = &odd), "b\n");
}

#[test]
fn fields_are_cut_to_php_fpm_sizes() {
    let long = vec![b'x'; 600];
    let line = render_with("%m|%r|%q|%f|%u|%n", |r| {
        r.method = &long;
        r.request_uri = &long;
        r.query_string = &long;
        r.script_filename = &long;
        r.auth_user = &long;
        r.pool = "a-pool-name-that-is-longer-than-31-bytes";
    });
    let lens: Vec<usize> = line.trim_end().split('|').map(str::len).collect();
    assert_eq!(lens, [15, 127, 511, 255, 31, 31]);
}

#[test]
fn long_lines_are_cut_at_1024_bytes() {
    let text = "y".repeat(2000);
    let line = AccessFormat::parse(&text).unwrap();
    let record_line = render_with(&text, |_| {});
    assert_eq!(record_line.len(), LINE_LIMIT + 1);
    assert!(line.items.len() == 1);
    // A token that runs past the end leaves its NUL in the last byte.
    let format = format!("{}%{{HTTP_HOST}}e", "z".repeat(1020));
    let cut = render_with(&format, |_| {});
    assert_eq!(cut.len(), LINE_LIMIT + 1);
    assert!(cut.ends_with("exa\0\n"), "{cut:?}");
    // Exactly full from text alone: no cut.
    let exact = "w".repeat(LINE_LIMIT);
    let parsed = AccessFormat::parse(&exact).unwrap();
    let r = render_with(&exact, |_| {});
    assert_eq!(r.len(), LINE_LIMIT + 1);
    assert!(!parsed.items.is_empty());
}

#[test]
fn truncation_is_reported() {
    let record = Record {
        method: b"GET",
        ..record()
    };
    let fits = AccessFormat::parse(&"a".repeat(1024)).unwrap();
    assert!(!fits.render(&record).truncated);
    let over = AccessFormat::parse(&"a".repeat(1025)).unwrap();
    assert!(over.render(&record).truncated);
    let token_fills = AccessFormat::parse(&format!("{}%m", "a".repeat(1021))).unwrap();
    let line = token_fills.render(&record);
    assert!(line.truncated);
    assert_eq!(&line.bytes[1021..], b"GE\0\n");
}

#[test]
fn an_empty_line_is_not_written() {
    assert_eq!(render_with("%q", |r| r.query_string = b""), "");
    assert_eq!(render(""), "");
    assert_eq!(render("%"), "");
    assert_eq!(render("a%"), "a\n");
}

#[test]
fn suppressed_paths_as_php_fpm() {
    let paths = vec!["/ping".to_string()];
    let check = |edit: &dyn Fn(&mut Record)| {
        let mut r = Record {
            request_uri: b"/ping",
            query_string: b"",
            ..record()
        };
        edit(&mut r);
        suppressed(&paths, &r)
    };
    assert!(check(&|_| {}));
    assert!(check(&|r| r.method = b"HEAD"));
    assert!(check(&|r| r.status = 204));
    assert!(!check(&|r| r.method = b"POST"));
    assert!(!check(&|r| r.query_string = b"x"));
    assert!(!check(&|r| r.status = 404));
    assert!(!check(&|r| r.content_length = 3));
    assert!(!check(&|r| r.request_uri = b"/ping/"));
}

#[test]
fn refused_formats_with_php_fpm_messages() {
    let err = |f: &str| AccessFormat::parse(f).unwrap_err();
    assert_eq!(err("%x"), "Invalid token in the access.format (%x)");
    assert_eq!(err("%{abc"), "missing closing embrace in the access.format");
    assert_eq!(
        err("%{abc}"),
        "missing closing embrace in the access.format"
    );
    assert_eq!(err("%{x}f"), "embrace is not allowed for modifier %f");
    assert_eq!(err("%{x}%"), "embrace is not allowed for modifier %%");
    assert_eq!(
        err("%{hours}d"),
        "only 'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds' are allowed as a modifier for %d ('hours')"
    );
    assert_eq!(
        err("%{idle}C"),
        "only 'total', 'user' or 'system' are allowed as a modifier for %C ('idle')"
    );
    assert_eq!(
        err("%{giga}M"),
        "only 'bytes', 'kilo', 'kilobytes', 'mega' or 'megabytes' are allowed as a modifier for %M ('giga')"
    );
    assert_eq!(
        err("%e"),
        "the name of the environment variable must be set between embraces for %e"
    );
    assert_eq!(
        err("%{}o"),
        "the name of the header must be set between embraces for %o"
    );
    assert!(AccessFormat::parse("%{}f %{a}{HTTP_HOST}e").is_ok());
    assert!(AccessFormat::parse("%{HTTP_HOST}e").unwrap().items.len() == 1);
    assert!(!AccessFormat::parse(DEFAULT_FORMAT).unwrap().wants_headers());
    assert!(AccessFormat::parse("%{X}o").unwrap().wants_headers());
}
