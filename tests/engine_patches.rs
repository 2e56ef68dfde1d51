//! PHP's own bugs that ended a worker (every request on it) from one
//! script, each fixed by a patch in `ffi/php-patches/` and checked here
//! through a real request: the worker must answer and stay the same
//! process. On a build without the patch, each of these tests fails.

use std::path::Path;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::Tfpm;
use fcgi_tests::docroot;
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::launch::Launch;

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

fn start() -> Tfpm {
    Launch::new(Path::new(TFPM))
        .threads("1")
        .inis(&["display_errors=0", "log_errors=1"])
        .start()
}

/// The body of `request`, which must be answered.
fn answer(tfpm: &Tfpm, request: &CgiRequest) -> String {
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    match client.send(request, false) {
        Ok(response) => response.cgi().text(),
        Err(e) => panic!(
            "{} was not answered: {e}\n{}",
            request.script_name,
            tfpm.log()
        ),
    }
}

fn assert_same_worker(tfpm: &Tfpm, pids: Vec<u32>) {
    assert_eq!(tfpm.worker_pids(), pids, "{}", tfpm.log());
    assert!(!tfpm.log().contains("worker exited"), "{}", tfpm.log());
}

/// PHP 8.4's mb_get_info() returned the ini entry's own string without a
/// reference: with the value from a PHP_VALUE, freeing the result freed the
/// setting (`zend_mm_heap corrupted`, the worker aborted). PHP patch 8.4/0006.
#[test]
fn mb_get_info_leaves_a_per_request_setting_alone() {
    let tfpm = start();
    let pids = tfpm.worker_pids();
    for _ in 0..3 {
        let request = CgiRequest::get(&docroot(), "/engine/mb_get_info.php")
            .param("PHP_VALUE", "mbstring.http_output_conv_mimetypes=abc");
        assert_eq!(answer(&tfpm, &request), "abc abc\n");
        assert_eq!(tfpm.fetch("/hello.php", "").cgi().status, 200);
    }
    assert_same_worker(&tfpm, pids);
}

/// PHP 8.4.16's mb_regex_encoding() took an encoding that Oniguruma knows
/// and mbfl does not, and mb_ereg_search_init() then dereferenced NULL
/// (GHSA-wm6j-2649-pv75): SIGSEGV. PHP 8.2.31 refuses such an encoding with
/// a ValueError; PHP patch 8.4/0008 does the same.
#[test]
fn an_encoding_unknown_to_mbfl_is_refused_and_the_worker_stays() {
    let tfpm = start();
    let pids = tfpm.worker_pids();
    let refused = "ValueError: mb_regex_encoding(): Argument #1 ($encoding) must be a valid \
                   encoding, \"iso-8859-11\" given\n";
    for _ in 0..2 {
        let request = CgiRequest::get(&docroot(), "/engine/mbregex_encoding.php");
        assert_eq!(answer(&tfpm, &request), refused);
    }
    assert_same_worker(&tfpm, pids);
}
