//! nginx's other FastCGI modes in front of tfpm, each in a location of its
//! own next to the unchanged `nginx-conf/tfpm-php.conf`:
//! `fastcgi_request_buffering off` with a chunked upload (no CONTENT_LENGTH:
//! the body streams to PHP as it arrives), `fastcgi_buffering off` (output
//! reaches the client while the script still runs), and
//! `fastcgi_keep_conn off` (a connection per request, closed by tfpm).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use fcgi_tests::daemon::Tfpm;
use fcgi_tests::http;
use fcgi_tests::nginx::Nginx;
use fcgi_tests::{docroot, md5_hex};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

/// `/stream/x.php` runs `x.php` unbuffered both ways; `/nokeep/x.php` runs it
/// on a connection of its own. The `^~` prefixes keep the `.php` regex
/// location of tfpm-php.conf from taking these URIs.
const MODES: &str = r"
        location ^~ /stream/ {
            location ~ ^/stream(/.+\.php)$ {
                include fastcgi.conf;
                fastcgi_param SCRIPT_FILENAME $document_root$1;
                fastcgi_param SCRIPT_NAME $1;
                fastcgi_request_buffering off;
                fastcgi_buffering off;
                fastcgi_keep_conn on;
                fastcgi_pass tfpm;
            }
        }
        location ^~ /nokeep/ {
            location ~ ^/nokeep(/.+\.php)$ {
                include fastcgi.conf;
                fastcgi_param SCRIPT_FILENAME $document_root$1;
                fastcgi_param SCRIPT_NAME $1;
                fastcgi_keep_conn off;
                fastcgi_pass tfpm;
            }
        }
";

struct Stack {
    nginx: Nginx,
    tfpm: Tfpm,
}

fn stack() -> Stack {
    let tfpm = Tfpm::start(
        Path::new(TFPM),
        &["--listen", "127.0.0.1:0", "--threads", "4"],
    );
    let nginx = Nginx::start(&tfpm.addr().to_string(), &docroot(), MODES);
    Stack { nginx, tfpm }
}

impl Stack {
    fn diagnose(&self) -> String {
        format!("{}\n{}", self.tfpm.log(), self.nginx.error_log())
    }
}

/// Reads lines, as they arrive, until one contains `needle`; returns them all.
fn read_until(reader: &mut BufReader<TcpStream>, needle: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read");
        assert!(n > 0, "EOF before {needle:?}; got:\n{seen}");
        seen.push_str(&line);
    }
    seen
}

#[test]
fn a_chunked_upload_streams_to_php_without_request_buffering() {
    let s = stack();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut stream = TcpStream::connect(s.nginx.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = "POST /stream/input.php HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/octet-stream\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    for piece in body.chunks(7000) {
        write!(stream, "{:x}\r\n", piece.len()).unwrap();
        stream.write_all(piece).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("response");
    let response = http::parse_response(&raw, "POST").expect("HTTP response");
    let expected = format!(
        "{{\"bytes\":{},\"md5\":\"{}\"}}",
        body.len(),
        md5_hex(&body)
    );
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.summary(),
        s.diagnose()
    );
    assert_eq!(response.text(), expected, "{}", s.diagnose());
}

#[test]
fn output_streams_to_the_client_without_fastcgi_buffering() {
    let s = stack();
    let dir = fcgi_tests::tempfile::tempdir().expect("temp dir");
    let go = dir.path().join("go");
    let mut stream = TcpStream::connect(s.nginx.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = format!(
        "GET /stream/stream_wait.php?go={} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        go.display()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    // "first" arrives while the script waits for `go`, which only we create.
    let head = read_until(&mut reader, "first");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    std::fs::write(&go, b"").unwrap();
    let rest = read_until(&mut reader, "second");
    assert!(!rest.contains("timeout"), "{rest}");
}

#[test]
fn without_keep_conn_each_request_gets_its_own_connection() {
    let s = stack();
    for _ in 0..20 {
        let response = http::get(s.nginx.addr(), "/nokeep/hello.php");
        assert_eq!(
            response.status,
            200,
            "{}\n{}",
            response.summary(),
            s.diagnose()
        );
        assert_eq!(response.text(), "Hello, world!\n");
    }
    let errors: Vec<String> = s
        .nginx
        .error_log()
        .lines()
        .filter(|l| l.contains("[error]") || l.contains("[crit]"))
        .map(String::from)
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
