//! The FastCGI conformance suite: raw byte vectors (every row of the
//! malformed-input table, every record type, the spec's Appendix B flows,
//! management records, roles, limits) sent to tfpm and to php-fpm from the
//! same PHP build.
//!
//! For each vector the raw-record client reports the records that came back
//! and whether the connection closed, as one summary line. tfpm must give the
//! expected line, written here from the spec, and give it whatever the
//! chunking: all at once, one byte per write, and 7-byte pieces. php-fpm's
//! line is recorded next to it; where the two differ, the vector says why.
//! The rows become `fcgi-tests/MATRIX.md` (`TFPM_WRITE_MATRIX=1` rewrites
//! it; otherwise the committed matrix must list the same rows and the same
//! tfpm column).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fcgi_client::{
    begin_body, encode_pair, encode_record, encode_stream, ABORT_REQUEST, BEGIN_REQUEST,
    END_REQUEST, GET_VALUES, GET_VALUES_RESULT, KEEP_CONN, PARAMS, RESPONDER, STDERR, STDIN,
    STDOUT, UNKNOWN_TYPE,
};
use fcgi_tests::fpm::PhpFpm;
use fcgi_tests::launch::Launch;
use fcgi_tests::raw::RawConn;
use fcgi_tests::{docroot, repo_root};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
const DATA: u8 = 8;
const AUTHORIZER: u16 = 2;
const FILTER: u16 = 3;
/// The chunkings every vector is sent in to tfpm (0: one write).
const PIECES: [usize; 3] = [0, 1, 7];
/// Vectors larger than this are only sent whole (one byte per write is slow).
const CHUNKED_MAX: usize = 64 * 1024;

/// One row of the matrix.
struct Vector {
    behaviour: &'static str,
    /// The bytes to send; each later step is sent once the answer to the
    /// one before has been observed.
    steps: Vec<fn() -> Vec<u8>>,
    /// tfpm's summary, as the spec asks (steps joined by ` → `).
    expect: &'static str,
    /// Runs against tfpm started with --multiplex.
    multiplex: bool,
    /// How long the server may stay silent before a step's answer is over.
    quiet: Duration,
    /// Why php-fpm answers differently, when it does.
    php_fpm_differs: Option<&'static str>,
}

impl Vector {
    fn new(behaviour: &'static str, bytes: fn() -> Vec<u8>, expect: &'static str) -> Vector {
        Vector {
            behaviour,
            steps: vec![bytes],
            expect,
            multiplex: false,
            quiet: Duration::from_millis(300),
            php_fpm_differs: None,
        }
    }

    /// php-fpm answers differently, for this reason.
    fn differs(mut self, why: &'static str) -> Vector {
        self.php_fpm_differs = Some(why);
        self
    }

    /// Sends `bytes` after the answer to the previous step.
    fn then(mut self, bytes: fn() -> Vec<u8>) -> Vector {
        self.steps.push(bytes);
        self
    }

    /// Against the multiplexing tfpm.
    fn multiplexed(mut self) -> Vector {
        self.multiplex = true;
        self
    }

    /// For answers that take a while (a script that sleeps).
    fn slow(mut self) -> Vector {
        self.quiet = Duration::from_secs(3);
        self
    }
}

// ---- building vectors -------------------------------------------------------

fn pairs(script: &str, query: &str) -> Vec<u8> {
    pairs_of(&CgiRequest::get(&docroot(), script).query(query).params())
}

fn post_pairs(script: &str, body_len: usize) -> Vec<u8> {
    let mut params = CgiRequest::get(&docroot(), script).params();
    for (name, value) in &mut params {
        match name.as_str() {
            "REQUEST_METHOD" => *value = "POST".into(),
            "CONTENT_LENGTH" => *value = body_len.to_string(),
            "CONTENT_TYPE" => *value = "application/octet-stream".into(),
            _ => {}
        }
    }
    pairs_of(&params)
}

fn pairs_of(params: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in params {
        out.extend(encode_pair(name.as_bytes(), value.as_bytes()));
    }
    out
}

fn begin(id: u16, role: u16, keep: bool) -> Vec<u8> {
    let flags = if keep { KEEP_CONN } else { 0 };
    encode_record(BEGIN_REQUEST, id, &begin_body(role, flags))
}

/// A whole GET: BEGIN, PARAMS, empty STDIN.
fn get(id: u16, script: &str, query: &str, keep: bool) -> Vec<u8> {
    let mut out = begin(id, RESPONDER, keep);
    out.extend(encode_stream(PARAMS, id, &pairs(script, query)));
    out.extend(encode_stream(STDIN, id, b""));
    out
}

fn hello(keep: bool) -> Vec<u8> {
    get(1, "/hello.php", "", keep)
}

fn get_values(names: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    for name in names {
        body.extend(encode_pair(name.as_bytes(), b""));
    }
    encode_record(GET_VALUES, 0, &body)
}

fn join(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// A record with an arbitrary header.
fn raw_record(version: u8, kind: u8, id: u16, content: &[u8], padding: u8) -> Vec<u8> {
    let [id_hi, id_lo] = id.to_be_bytes();
    let [len_hi, len_lo] = (content.len() as u16).to_be_bytes();
    let mut out = vec![version, kind, id_hi, id_lo, len_hi, len_lo, padding, 0];
    out.extend_from_slice(content);
    out.resize(out.len() + usize::from(padding), 0);
    out
}

/// A pair whose lengths use the 4-byte form even though they are short.
fn long_form_pair(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for len in [name.len(), value.len()] {
        out.extend((len as u32 | 0x8000_0000).to_be_bytes());
    }
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    out
}

// ---- the vectors ------------------------------------------------------------

fn vectors() -> Vec<Vector> {
    let v = Vector::new;
    vec![
        v(
            "responder GET, FCGI_KEEP_CONN off: answer, then close",
            || hello(false),
            "1:200\"Hello, world!\" end1:complete · closed",
        ),
        v(
            "responder GET, FCGI_KEEP_CONN on: the connection stays open",
            || hello(true),
            "1:200\"Hello, world!\" end1:complete · open",
        ),
        v(
            "two requests in one write on a kept connection",
            || join(&[hello(true), hello(true)]),
            "1:200\"Hello, world!\" end1:complete 1:200\"Hello, world!\" end1:complete · open",
        ),
        v(
            "POST body in several STDIN records (Appendix B.2)",
            || {
                let body = b"0123456789".repeat(1000);
                let mut out = begin(1, RESPONDER, true);
                out.extend(encode_stream(PARAMS, 1, &post_pairs("/input.php", body.len())));
                for piece in body.chunks(1000) {
                    out.extend(encode_record(STDIN, 1, piece));
                }
                out.extend(encode_record(STDIN, 1, b""));
                out
            },
            "1:200\"{\\\"bytes\\\":10000,\\\"md5\\\":\\\"2b\" end1:complete · open",
        ),
        v(
            "STDERR and STDOUT from one request (Appendix B.3)",
            || get(1, "/stderr.php", "", true),
            "stderr1 1:200\"out\" end1:complete · open",
        ),
        v(
            "large response: records of at most 65535 bytes, padded to 8",
            || get(1, "/huge_echo.php", "mb=1", true),
            "1:200\"hhhhhhhhhhhhhhhhhhhhhhhh\" end1:complete · open",
        ),
        v(
            "GET_VALUES before any request",
            || get_values(&["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"]),
            "values[FCGI_MAX_CONNS FCGI_MAX_REQS FCGI_MPXS_CONNS=0] · open",
        )
        .differs("php-fpm answers FCGI_MPXS_CONNS only: the code that would add FCGI_MAX_CONNS and FCGI_MAX_REQS is compiled out"),
        v(
            "GET_VALUES between requests on a kept connection (PHP bug #76922)",
            || hello(true),
            "1:200\"Hello, world!\" end1:complete · open → values[FCGI_MPXS_CONNS=0] · open → 1:200\"Hello, world!\" end1:complete · open",
        )
        .then(|| get_values(&["FCGI_MPXS_CONNS"]))
        .then(|| hello(true)),
        v(
            "GET_VALUES asking an unknown name: it is left out",
            || get_values(&["FCGI_NOT_A_THING", "FCGI_MPXS_CONNS"]),
            "values[FCGI_MPXS_CONNS=0] · open",
        ),
        v(
            "unknown management type 99 on id 0: UNKNOWN_TYPE",
            || join(&[encode_record(99, 0, b"12345678"), hello(true)]),
            "unknown_type:99 1:200\"Hello, world!\" end1:complete · open",
        )
        .differs("php-fpm closes the connection on a record type it does not know; the spec asks for UNKNOWN_TYPE"),
        v(
            "unknown record type 99 on a request id: UNKNOWN_TYPE",
            || join(&[encode_record(99, 1, b""), hello(true)]),
            "unknown_type:99 1:200\"Hello, world!\" end1:complete · open",
        )
        .differs("php-fpm closes the connection on a record type it does not know"),
        v(
            "AUTHORIZER role: the script runs, with FCGI_ROLE=AUTHORIZER",
            || {
                let mut out = begin(1, AUTHORIZER, true);
                out.extend(encode_stream(PARAMS, 1, &pairs("/role.php", "")));
                out.extend(encode_stream(STDIN, 1, b""));
                out
            },
            "1:200\"AUTHORIZER\" end1:complete · open",
        ),
        v(
            "FILTER role: DATA is consumed, the script runs",
            || {
                let mut out = begin(1, FILTER, true);
                out.extend(encode_stream(PARAMS, 1, &pairs("/hello.php", "")));
                out.extend(encode_stream(STDIN, 1, b""));
                out.extend(encode_stream(DATA, 1, b"file data"));
                out.extend(hello(true));
                out
            },
            "1:200\"Hello, world!\" end1:complete 1:200\"Hello, world!\" end1:complete · open",
        )
        .differs("php-fpm answers the FILTER request, then closes the kept connection instead of reading its DATA stream"),
        v(
            "unknown role 7: END_REQUEST UNKNOWN_ROLE, and the connection goes on",
            || join(&[begin(1, 7, true), hello(true)]),
            "end1:unknown_role 1:200\"Hello, world!\" end1:complete · open",
        )
        .differs("php-fpm closes the connection; the spec asks for END_REQUEST with UNKNOWN_ROLE"),
        v(
            "a second BEGIN_REQUEST on a connection that does not multiplex: CANT_MPX_CONN",
            || {
                let mut out = begin(1, RESPONDER, true);
                out.extend(encode_stream(PARAMS, 1, &post_pairs("/input.php", 3)));
                out.extend(get(2, "/hello.php", "", true));
                out.extend(encode_stream(STDIN, 1, b"abc"));
                out
            },
            "end2:cant_mpx 1:200\"{\\\"bytes\\\":3,\\\"md5\\\":\\\"900150\" end1:complete · open",
        )
        .differs("php-fpm takes any other record during STDIN as the end of the body: the script gets an empty body, and the connection closes"),
        v(
            "GET_VALUES between two STDIN records of a request: answered, the body goes on",
            || {
                let mut out = begin(1, RESPONDER, true);
                out.extend(encode_stream(PARAMS, 1, &post_pairs("/input.php", 4)));
                out.extend(encode_record(STDIN, 1, b"ab"));
                out.extend(get_values(&["FCGI_MPXS_CONNS"]));
                out.extend(encode_stream(STDIN, 1, b"cd"));
                out
            },
            "values[FCGI_MPXS_CONNS=0] 1:200\"{\\\"bytes\\\":4,\\\"md5\\\":\\\"e2fc71\" end1:complete · open",
        )
        .differs("php-fpm takes the GET_VALUES as the end of the body: the script gets an empty body, and the connection closes"),
        v(
            "ABORT_REQUEST for an inactive id: ignored",
            || join(&[encode_record(ABORT_REQUEST, 5, b""), hello(true)]),
            HELLO_OPEN,
        )
        .differs("php-fpm closes the connection; the spec says to ignore it"),
        v(
            "ABORT_REQUEST before the PARAMS stream ended: one END_REQUEST at once",
            || {
                let mut out = begin(1, RESPONDER, true);
                out.extend(encode_record(PARAMS, 1, &pairs("/hello.php", "")));
                out.extend(encode_record(ABORT_REQUEST, 1, b""));
                out
            },
            "end1:complete · open",
        )
        .differs("php-fpm runs the script anyway and answers it"),
        v(
            "STDIN, PARAMS and DATA for an id never begun: skipped",
            || {
                join(&[
                    encode_record(STDIN, 3, b"x"),
                    encode_record(PARAMS, 3, &pairs("/hello.php", "")),
                    encode_record(DATA, 3, b"x"),
                    hello(true),
                ])
            },
            HELLO_OPEN,
        )
        .differs("php-fpm closes the connection; the spec says to skip records for inactive ids"),
        v(
            "a stray empty STDIN record after the body ended: skipped",
            || {
                let mut out = begin(1, RESPONDER, true);
                out.extend(encode_stream(PARAMS, 1, &post_pairs("/input.php", 1)));
                out.extend(encode_stream(STDIN, 1, b"a"));
                out.extend(encode_record(STDIN, 1, b""));
                out
            },
            "1:200\"{\\\"bytes\\\":1,\\\"md5\\\":\\\"0cc175\" end1:complete · open",
        ),
        v(
            "a pair straddling two PARAMS records (php-src#16042)",
            || {
                let all = pairs("/hello.php", "");
                let (a, b) = all.split_at(all.len() / 2 + 3);
                join(&[
                    begin(1, RESPONDER, true),
                    encode_record(PARAMS, 1, a),
                    encode_record(PARAMS, 1, b),
                    encode_stream(PARAMS, 1, b""),
                    encode_stream(STDIN, 1, b""),
                ])
            },
            HELLO_OPEN,
        )
        .differs("php-fpm parses each PARAMS record on its own and closes the connection (php-src#16042); the spec makes PARAMS one stream"),
        v(
            "PARAMS one byte per record",
            || {
                let mut out = begin(1, RESPONDER, true);
                for byte in pairs("/hello.php", "") {
                    out.extend(encode_record(PARAMS, 1, &[byte]));
                }
                out.extend(encode_record(PARAMS, 1, b""));
                out.extend(encode_stream(STDIN, 1, b""));
                out
            },
            HELLO_OPEN,
        )
        .differs("as above: php-fpm cannot parse pairs that straddle PARAMS records"),
        v(
            "4-byte lengths for short names and values",
            || {
                let mut body = pairs("/hello.php", "");
                body.extend(long_form_pair(b"HTTP_X_LONG_FORM", b"yes"));
                join(&[
                    begin(1, RESPONDER, true),
                    encode_stream(PARAMS, 1, &body),
                    encode_stream(STDIN, 1, b""),
                ])
            },
            HELLO_OPEN,
        ),
        v(
            "a pair declaring a value of 2^31-1 bytes: 431, nothing allocated",
            || {
                let mut body = pairs("/hello.php", "");
                body.extend([1, 0xFF, 0xFF, 0xFF, 0xFF, b'X']);
                join(&[
                    begin(1, RESPONDER, true),
                    encode_stream(PARAMS, 1, &body),
                    encode_stream(STDIN, 1, b""),
                    hello(true),
                ])
            },
            "1:431\"Request header fields to\" end1:complete 1:200\"Hello, world!\" end1:complete · open",
        )
        .differs("php-fpm closes the connection (nginx would answer 502); tfpm answers this request 431 and keeps the connection"),
        v(
            "1.1 MB of PARAMS: 431, and the connection goes on",
            || {
                let mut body = pairs("/hello.php", "");
                body.extend(encode_pair(b"HTTP_X_HUGE", &vec![b'x'; 1100 * 1024]));
                join(&[
                    begin(1, RESPONDER, true),
                    encode_stream(PARAMS, 1, &body),
                    encode_stream(STDIN, 1, b""),
                    hello(true),
                ])
            },
            "1:431\"Request header fields to\" end1:complete 1:200\"Hello, world!\" end1:complete · open",
        )
        .differs("php-fpm closes the connection (nginx would answer 502)"),
        v(
            "the PARAMS stream ends inside a pair: 400",
            || {
                let mut body = pairs("/hello.php", "");
                body.extend([4, 100]);
                body.extend(b"NAME");
                join(&[
                    begin(1, RESPONDER, true),
                    encode_stream(PARAMS, 1, &body),
                    encode_stream(STDIN, 1, b""),
                ])
            },
            "1:400\"Malformed request parame\" end1:complete · open",
        )
        .differs("php-fpm closes the connection (nginx would answer 502)"),
        v(
            "records with 255 bytes of padding",
            || {
                join(&[
                    raw_record(1, BEGIN_REQUEST, 1, &begin_body(RESPONDER, KEEP_CONN), 255),
                    raw_record(1, PARAMS, 1, &pairs("/hello.php", ""), 255),
                    raw_record(1, PARAMS, 1, b"", 255),
                    raw_record(1, STDIN, 1, b"", 255),
                ])
            },
            HELLO_OPEN,
        )
        .differs("php-fpm answers, then closes the kept connection"),
        v(
            "FCGI version 0: the connection closes",
            || raw_record(0, BEGIN_REQUEST, 1, &begin_body(RESPONDER, KEEP_CONN), 0),
            "nothing · closed",
        ),
        v(
            "FCGI version 2: the connection closes",
            || {
                let mut out = raw_record(2, BEGIN_REQUEST, 1, &begin_body(RESPONDER, KEEP_CONN), 0);
                out.extend(&get(1, "/hello.php", "", true)[8 + 8..]);
                out
            },
            "nothing · closed",
        )
        .differs("php-fpm only refuses versions below 1; no version 2 exists, so its framing cannot be trusted"),
        v(
            "BEGIN_REQUEST with a 7-byte body: the connection closes",
            || join(&[encode_record(BEGIN_REQUEST, 1, &[0, 1, 1, 0, 0, 0, 0]), hello(true)]),
            "nothing · closed",
        ),
        v(
            "BEGIN_REQUEST with an empty body: the connection closes",
            || join(&[encode_record(BEGIN_REQUEST, 1, b""), hello(true)]),
            "nothing · closed",
        ),
        v(
            "BEGIN_REQUEST on id 0: the connection closes",
            || join(&[begin(0, RESPONDER, true), hello(true)]),
            "nothing · closed",
        )
        .differs("php-fpm runs a request on id 0, which the spec reserves for management records"),
        v(
            "BEGIN_REQUEST for an id that is already active: the connection closes",
            || {
                let mut out = begin(1, RESPONDER, true);
                out.extend(encode_record(PARAMS, 1, &pairs("/hello.php", "")));
                out.extend(begin(1, RESPONDER, true));
                out
            },
            "nothing · closed",
        )
        .differs("php-fpm runs the first request with the params it has, then closes"),
        v(
            "STDOUT from the web server (a type only the application sends): close",
            || join(&[encode_record(STDOUT, 1, b"x"), hello(true)]),
            "nothing · closed",
        ),
        v(
            "END_REQUEST from the web server: close",
            || join(&[encode_record(END_REQUEST, 1, &[0; 8]), hello(true)]),
            "nothing · closed",
        ),
        v(
            "STDERR from the web server: close",
            || join(&[encode_record(STDERR, 1, b"x"), hello(true)]),
            "nothing · closed",
        ),
        v(
            "GET_VALUES_RESULT from the web server on id 0: UNKNOWN_TYPE",
            || join(&[encode_record(GET_VALUES_RESULT, 0, b""), hello(true)]),
            "unknown_type:10 1:200\"Hello, world!\" end1:complete · open",
        )
        .differs("php-fpm closes the connection on a record type it does not expect"),
        v(
            "UNKNOWN_TYPE from the web server on id 0: UNKNOWN_TYPE",
            || join(&[encode_record(UNKNOWN_TYPE, 0, &[99, 0, 0, 0, 0, 0, 0, 0]), hello(true)]),
            "unknown_type:11 1:200\"Hello, world!\" end1:complete · open",
        )
        .differs("php-fpm closes the connection on a record type it does not expect"),
        v(
            "GET_VALUES on a request id: close",
            || join(&[get_values(&["FCGI_MPXS_CONNS"])[..2].to_vec(), vec![0, 1], get_values(&["FCGI_MPXS_CONNS"])[4..].to_vec()]),
            "nothing · closed",
        )
        .differs("php-fpm answers it; the spec puts management records on id 0 only"),
        v(
            "STDIN before the PARAMS stream ended: close",
            || {
                let mut out = begin(1, RESPONDER, true);
                out.extend(encode_record(PARAMS, 1, &pairs("/hello.php", "")));
                out.extend(encode_record(STDIN, 1, b"x"));
                out
            },
            "nothing · closed",
        )
        .differs("php-fpm runs the script with the params it has, then closes"),
        v(
            "PARAMS after the PARAMS stream ended: close",
            || {
                let mut out = begin(1, RESPONDER, true);
                out.extend(encode_stream(PARAMS, 1, &post_pairs("/input.php", 1)));
                out.extend(encode_record(PARAMS, 1, &encode_pair(b"LATE", b"1")));
                out
            },
            "nothing · closed",
        )
        .differs("php-fpm takes the record as the end of the body, runs the script, then closes"),
        v(
            "a record cut short by EOF: nothing, no crash",
            || begin(1, RESPONDER, true)[..5].to_vec(),
            "nothing · closed",
        ),
        v(
            "ABORT_REQUEST for a running request: exactly one END_REQUEST, at once",
            || join(&[get(1, "/abort_wait.php", "s=2&marker=/dev/null", true), encode_record(ABORT_REQUEST, 1, b"")]),
            "end1:complete · open",
        )
        .slow()
        .differs("php-fpm does not read the connection while a script runs: the script sleeps its full 2 s, then php-fpm reads an ABORT for an ended request and closes"),
        v(
            "multiplexing (FCGI_MPXS_CONNS=1): requests finish out of order (Appendix B.4)",
            || join(&[get(1, "/sleep.php", "ms=500", true), get(2, "/hello.php", "", true)]),
            "2:200\"Hello, world!\" end2:complete 1:200\"slept 500\" end1:complete · open",
        )
        .multiplexed()
        .slow()
        .differs("php-fpm does not multiplex: it answers one request after the other"),
    ]
}

const HELLO_OPEN: &str = "1:200\"Hello, world!\" end1:complete · open";

// ---- running them -----------------------------------------------------------

/// What one server answered to one vector, sent in one chunking.
fn observe(addr: std::net::SocketAddr, vector: &Vector, piece: usize) -> String {
    let mut conn = RawConn::connect(addr).expect("connect");
    let mut answers = Vec::new();
    for step in &vector.steps {
        let bytes = step();
        conn.send(&bytes, piece);
        if bytes.len() < 8 {
            conn.finish(); // a record cut short: EOF follows
        }
        answers.push(conn.observe_quiet(vector.quiet).summary());
    }
    answers.join(" → ")
}

/// Whether every step of the vector is small enough to send byte by byte.
fn small(vector: &Vector) -> bool {
    vector.steps.iter().all(|step| step().len() <= CHUNKED_MAX)
}

fn start_tfpm(multiplex: bool) -> Tfpm {
    let launch = Launch::new(Path::new(TFPM)).threads("4");
    match multiplex {
        true => launch.args(&["--multiplex"]).start(),
        false => launch.start(),
    }
}

struct Row {
    behaviour: &'static str,
    tfpm: String,
    php_fpm: String,
    why: Option<&'static str>,
}

#[test]
fn conformance_matrix() {
    let plain = start_tfpm(false);
    let mpx = start_tfpm(true);
    let fpm = PhpFpm::start(2, "", &[]);
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut runs = 0;
    for vector in vectors() {
        let tfpm = if vector.multiplex { &mpx } else { &plain };
        let pieces: Vec<usize> = PIECES
            .into_iter()
            .filter(|&piece| piece == 0 || small(&vector))
            .collect();
        // Each chunking on its own connection, at the same time as php-fpm's run.
        let (seen, php_fpm) = std::thread::scope(|scope| {
            let tfpm_runs: Vec<_> = pieces
                .iter()
                .map(|&piece| {
                    let vector = &vector;
                    scope.spawn(move || observe(tfpm.addr(), vector, piece))
                })
                .collect();
            let php_fpm = observe(fpm.addr(), &vector, 0);
            let seen: Vec<String> = tfpm_runs
                .into_iter()
                .map(|run| run.join().expect("observer thread"))
                .collect();
            (seen, php_fpm)
        });
        runs += seen.len() + 1;
        for (piece, seen) in pieces.iter().zip(&seen) {
            if *seen != vector.expect {
                failures.push(format!(
                    "{} (pieces of {piece}):\n  expected {}\n  observed {seen}",
                    vector.behaviour, vector.expect
                ));
            }
        }
        let why = vector.php_fpm_differs;
        if php_fpm != vector.expect && why.is_none() {
            failures.push(format!(
                "{}: php-fpm answered {php_fpm}, tfpm should answer {}; fix tfpm or say why they differ",
                vector.behaviour, vector.expect
            ));
        }
        rows.push(Row {
            behaviour: vector.behaviour,
            tfpm: vector.expect.to_string(),
            php_fpm,
            why,
        });
    }
    eprintln!("conformance: {} vectors, {runs} runs", rows.len());
    // Both daemons survived every vector.
    for server in [&plain, &mpx] {
        let probe = Vector::new("probe", || hello(true), HELLO_OPEN);
        assert_eq!(observe(server.addr(), &probe, 0), HELLO_OPEN);
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        plain.log()
    );
    check_matrix(&render(&rows));
}

fn render(rows: &[Row]) -> String {
    let mut out = String::from(MATRIX_HEAD);
    for (n, row) in rows.iter().enumerate() {
        let same = if row.php_fpm == row.tfpm {
            "same"
        } else {
            "differs"
        };
        let _ = writeln!(
            out,
            "| {} | {} | `{}` ✓ | `{}` | {same}{} |",
            n + 1,
            row.behaviour,
            row.tfpm,
            row.php_fpm,
            row.why.map(|w| format!(": {w}")).unwrap_or_default()
        );
    }
    out
}

const MATRIX_HEAD: &str = "# FastCGI conformance matrix

Generated by `tests/conformance.rs` (`TFPM_WRITE_MATRIX=1 cargo test --test conformance`).
Each row is one raw byte vector, sent on a fresh connection. A cell is what
came back: per request id its CGI status and the first bytes of its body
(`1:200\"Hello…\"`), `end1:complete` for END_REQUEST and its protocol status,
`values[…]` for GET_VALUES_RESULT, `stderr1` when FCGI_STDERR was used,
`unknown_type:N`, `badly-framed` if any record broke the framing rules, and
whether the connection was left `open` or `closed`. tfpm gave its cell in
each of three chunkings (one write, one byte per write, 7-byte pieces; the
1.1 MB vector in one write only); ✓ means that is what the spec asks. The
php-fpm column is php-fpm 8.2 from the same PHP build; see
`fcgi-tests/README.md` for why each difference is intended.

| # | behaviour | tfpm | php-fpm | php-fpm vs tfpm |
|---|---|---|---|---|
";

fn matrix_path() -> PathBuf {
    repo_root().join("fcgi-tests/MATRIX.md")
}

/// Rewrites the committed matrix on request; otherwise checks that its rows
/// and tfpm column are what this run observed.
fn check_matrix(rendered: &str) {
    let path = matrix_path();
    if std::env::var_os("TFPM_WRITE_MATRIX").is_some() {
        std::fs::write(&path, rendered).expect("write MATRIX.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let tfpm_cells = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("| ") && l.contains(" ✓ |"))
            .map(|l| l.split(" | ").take(3).collect::<Vec<_>>().join(" | "))
            .collect()
    };
    assert_eq!(
        tfpm_cells(&committed),
        tfpm_cells(rendered),
        "fcgi-tests/MATRIX.md is stale: rerun with TFPM_WRITE_MATRIX=1"
    );
}
