//! The status page's formats, compared byte for byte with what php-fpm
//! writes.

use super::formats::HTML_PROC_COLUMNS;
use super::*;
use std::time::Duration;

const START: u64 = 1_709_211_909; // 2024-02-29 13:05:09 UTC

fn at(secs: u64, utc_offset: i32) -> LocalTime {
    LocalTime {
        time: UNIX_EPOCH + Duration::from_secs(secs),
        utc_offset,
    }
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis((START + 100) * 1000 + 999)
}

/// An idle process that served a request, the one serving the status
/// page, and one that never had a request.
fn pool() -> PoolStatus {
    PoolStatus {
        pool: "www".into(),
        process_manager: Pm::Static,
        start_time: at(START, 3600),
        accepted_conn: 11,
        listen_queue: 1,
        max_listen_queue: 2,
        listen_queue_len: 511,
        idle_processes: 2,
        active_processes: 1,
        max_active_processes: 3,
        max_children_reached: 4,
        slow_requests: 5,
        memory_peak: None,
        dialect: Dialect::Prefix,
        worker_script: None,
        procs: vec![served(), serving(), fresh()],
    }
}

fn served() -> ProcStatus {
    ProcStatus {
        pid: 101,
        state: ProcState::Idle,
        start_time: at(START + 10, -12_600),
        requests: 7,
        request_duration_us: 1234,
        request_method: "POST".into(),
        request_uri: "/index.php".into(),
        query_string: "a=1&b=<x>\"é/'".into(),
        content_length: 42,
        user: "bob".into(),
        script: "/srv/index.php".into(),
        last_request_cpu: 12.345,
        last_request_memory: 2_097_152,
    }
}

fn serving() -> ProcStatus {
    ProcStatus {
        pid: 102,
        state: ProcState::Running,
        start_time: at(START + 20, 0),
        requests: 3,
        request_duration_us: 5678,
        request_method: "GET".into(),
        request_uri: "/status".into(),
        query_string: "json&full".into(),
        content_length: 0,
        user: String::new(),
        script: "/status".into(),
        last_request_cpu: 50.0,
        last_request_memory: 999,
    }
}

fn fresh() -> ProcStatus {
    ProcStatus {
        pid: 103,
        state: ProcState::Idle,
        start_time: at(START + 30, 0),
        requests: 0,
        request_duration_us: 0,
        request_method: String::new(),
        request_uri: String::new(),
        query_string: String::new(),
        content_length: 0,
        user: String::new(),
        script: String::new(),
        last_request_cpu: 0.0,
        last_request_memory: 0,
    }
}

fn body(format: Format, full: bool) -> String {
    render(&pool(), format, full, now()).body
}

const TEXT: &str = "\
pool:                 www
process manager:      static
start time:           29/Feb/2024:14:05:09 +0100
start since:          100
accepted conn:        11
listen queue:         1
max listen queue:     2
listen queue len:     511
idle processes:       2
active processes:     1
total processes:      3
max active processes: 3
max children reached: 4
slow requests:        5
";

const TEXT_PROCS: &str = "
************************
pid:                  101
state:                Idle
start time:           29/Feb/2024:09:35:19 -0330
start since:          90
requests:             7
request duration:     1234
request method:       POST
request URI:          /index.php?a=1&b=<x>\"é/'
content length:       42
user:                 bob
script:               /srv/index.php
last request cpu:     12.35
last request memory:  2097152

************************
pid:                  102
state:                Running
start time:           29/Feb/2024:13:05:29 +0000
start since:          80
requests:             3
request duration:     5678
request method:       GET
request URI:          /status?json&full
content length:       0
user:                 -
script:               /status
last request cpu:     0.00
last request memory:  0

************************
pid:                  103
state:                Idle
start time:           29/Feb/2024:13:05:39 +0000
start since:          70
requests:             0
request duration:     0
request method:       -
request URI:          -
content length:       0
user:                 -
script:               -
last request cpu:     0.00
last request memory:  0
";

#[test]
fn text_short_and_full() {
    assert_eq!(body(Format::Text, false), TEXT);
    assert_eq!(body(Format::Text, true), format!("{TEXT}{TEXT_PROCS}"));
}

const JSON: &str = concat!(
    r#"{"pool":"www","process manager":"static","start time":1709211909,"start since":100,"#,
    r#""accepted conn":11,"listen queue":1,"max listen queue":2,"listen queue len":511,"#,
    r#""idle processes":2,"active processes":1,"total processes":3,"max active processes":3,"#,
    r#""max children reached":4,"slow requests":5"#,
);

const JSON_PROCS: &str = concat!(
    r#", "processes":["#,
    r#"{"pid":101,"state":"Idle","start time":1709211919,"start since":90,"requests":7,"#,
    r#""request duration":1234,"request method":"POST","#,
    r#""request uri":"\/index.php?a=1&b=<x>\"\u00e9\/'","content length":42,"user":"bob","#,
    r#""script":"/srv/index.php","last request cpu":12.35,"last request memory":2097152},"#,
    r#"{"pid":102,"state":"Running","start time":1709211929,"start since":80,"requests":3,"#,
    r#""request duration":5678,"request method":"GET","request uri":"\/status?json&full","#,
    r#""content length":0,"user":"-","script":"/status","last request cpu":0.00,"#,
    r#""last request memory":0},"#,
    r#"{"pid":103,"state":"Idle","start time":1709211939,"start since":70,"requests":0,"#,
    r#""request duration":0,"request method":"-","request uri":"-","content length":0,"#,
    r#""user":"-","script":"-","last request cpu":0.00,"last request memory":0}]"#,
);

#[test]
fn json_short_and_full() {
    assert_eq!(body(Format::Json, false), format!("{JSON}}}"));
    assert_eq!(body(Format::Json, true), format!("{JSON}{JSON_PROCS}}}"));
}

#[test]
fn json_full_without_processes() {
    let mut status = pool();
    status.procs.clear();
    let body = render(&status, Format::Json, true, now()).body;
    assert_eq!(body, format!("{JSON}, \"processes\":[]}}"));
}

const XML: &str = "\
<?xml version=\"1.0\" ?>
<status>
<pool>www</pool>
<process-manager>static</process-manager>
<start-time>1709211909</start-time>
<start-since>100</start-since>
<accepted-conn>11</accepted-conn>
<listen-queue>1</listen-queue>
<max-listen-queue>2</max-listen-queue>
<listen-queue-len>511</listen-queue-len>
<idle-processes>2</idle-processes>
<active-processes>1</active-processes>
<total-processes>3</total-processes>
<max-active-processes>3</max-active-processes>
<max-children-reached>4</max-children-reached>
<slow-requests>5</slow-requests>
";

const XML_PROCS: &str = concat!(
    "<processes>\n",
    "<process><pid>101</pid><state>Idle</state><start-time>1709211919</start-time>",
    "<start-since>90</start-since><requests>7</requests><request-duration>1234</request-duration>",
    "<request-method>POST</request-method>",
    "<request-uri>/index.php?a=1&amp;b=&lt;x&gt;&quot;é/'</request-uri>",
    "<content-length>42</content-length><user>bob</user><script>/srv/index.php</script>",
    "<last-request-cpu>12.35</last-request-cpu><last-request-memory>2097152</last-request-memory>",
    "</process>\n",
    "<process><pid>102</pid><state>Running</state><start-time>1709211929</start-time>",
    "<start-since>80</start-since><requests>3</requests><request-duration>5678</request-duration>",
    "<request-method>GET</request-method><request-uri>/status?json&amp;full</request-uri>",
    "<content-length>0</content-length><user>-</user><script>/status</script>",
    "<last-request-cpu>0.00</last-request-cpu><last-request-memory>0</last-request-memory>",
    "</process>\n",
    "<process><pid>103</pid><state>Idle</state><start-time>1709211939</start-time>",
    "<start-since>70</start-since><requests>0</requests><request-duration>0</request-duration>",
    "<request-method>-</request-method><request-uri>-</request-uri>",
    "<content-length>0</content-length><user>-</user><script>-</script>",
    "<last-request-cpu>0.00</last-request-cpu><last-request-memory>0</last-request-memory>",
    "</process>\n",
    "</processes>\n",
);

#[test]
fn xml_short_and_full() {
    assert_eq!(body(Format::Xml, false), format!("{XML}</status>"));
    assert_eq!(
        body(Format::Xml, true),
        format!("{XML}{XML_PROCS}</status>")
    );
}

const HTML: &str = "\
<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">
<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">
<head><title>PHP-FPM Status Page</title></head>
<body>
<table>
<tr><th>pool</th><td>www</td></tr>
<tr><th>process manager</th><td>static</td></tr>
<tr><th>start time</th><td>29/Feb/2024:14:05:09 +0100</td></tr>
<tr><th>start since</th><td>100</td></tr>
<tr><th>accepted conn</th><td>11</td></tr>
<tr><th>listen queue</th><td>1</td></tr>
<tr><th>max listen queue</th><td>2</td></tr>
<tr><th>listen queue len</th><td>511</td></tr>
<tr><th>idle processes</th><td>2</td></tr>
<tr><th>active processes</th><td>1</td></tr>
<tr><th>total processes</th><td>3</td></tr>
<tr><th>max active processes</th><td>3</td></tr>
<tr><th>max children reached</th><td>4</td></tr>
<tr><th>slow requests</th><td>5</td></tr>
</table>
";

const HTML_PROCS: &str = concat!(
    "<table border=\"1\">\n",
    "<tr><th>pid</th><th>state</th><th>start time</th><th>start since</th><th>requests</th>",
    "<th>request duration</th><th>request method</th><th>request uri</th>",
    "<th>content length</th><th>user</th><th>script</th><th>last request cpu</th>",
    "<th>last request memory</th></tr>\n",
    "<tr><td>101</td><td>Idle</td><td>29/Feb/2024:09:35:19 -0330</td><td>90</td><td>7</td>",
    "<td>1234</td><td>POST</td><td>/index.php?a=1&amp;b=&lt;x&gt;&quot;é/'</td><td>42</td>",
    "<td>bob</td><td>/srv/index.php</td><td>12.35</td><td>2097152</td></tr>\n",
    "<tr><td>102</td><td>Running</td><td>29/Feb/2024:13:05:29 +0000</td><td>80</td><td>3</td>",
    "<td>5678</td><td>GET</td><td>/status?json&amp;full</td><td>0</td>",
    "<td>-</td><td>/status</td><td>0.00</td><td>0</td></tr>\n",
    "<tr><td>103</td><td>Idle</td><td>29/Feb/2024:13:05:39 +0000</td><td>70</td><td>0</td>",
    "<td>0</td><td>-</td><td>-</td><td>0</td>",
    "<td>-</td><td>-</td><td>0.00</td><td>0</td></tr>\n",
    "</table>",
);

#[test]
fn html_short_and_full() {
    let end = "</body></html>";
    assert_eq!(body(Format::Html, false), format!("{HTML}{end}"));
    assert_eq!(body(Format::Html, true), format!("{HTML}{HTML_PROCS}{end}"));
}

const OPENMETRICS: &str = "\
# HELP phpfpm_up Could pool www using a static PM on PHP-FPM be reached?
# TYPE phpfpm_up gauge
phpfpm_up 1
# HELP phpfpm_start_since The number of seconds since FPM has started.
# TYPE phpfpm_start_since counter
phpfpm_start_since 100
# HELP phpfpm_accepted_connections The number of requests accepted by the pool.
# TYPE phpfpm_accepted_connections counter
phpfpm_accepted_connections 11
# HELP phpfpm_listen_queue The number of requests in the queue of pending connections.
# TYPE phpfpm_listen_queue gauge
phpfpm_listen_queue 1
# HELP phpfpm_max_listen_queue The maximum number of requests in the queue of pending connections since FPM has started.
# TYPE phpfpm_max_listen_queue counter
phpfpm_max_listen_queue 2
# TYPE phpfpm_listen_queue_length gauge
# HELP phpfpm_listen_queue_length The size of the socket queue of pending connections.
phpfpm_listen_queue_length 511
# HELP phpfpm_idle_processes The number of idle processes.
# TYPE phpfpm_idle_processes gauge
phpfpm_idle_processes 2
# HELP phpfpm_active_processes The number of active processes.
# TYPE phpfpm_active_processes gauge
phpfpm_active_processes 1
# HELP phpfpm_total_processes The number of idle + active processes.
# TYPE phpfpm_total_processes gauge
phpfpm_total_processes 3
# HELP phpfpm_max_active_processes The maximum number of active processes since FPM has started.
# TYPE phpfpm_max_active_processes counter
phpfpm_max_active_processes 3
# HELP phpfpm_max_children_reached The number of times, the process limit has been reached, when pm tries to start more children (works only for pm 'dynamic' and 'ondemand').
# TYPE phpfpm_max_children_reached counter
phpfpm_max_children_reached 4
# HELP phpfpm_slow_requests The number of requests that exceeded your 'request_slowlog_timeout' value.
# TYPE phpfpm_slow_requests counter
phpfpm_slow_requests 5
# EOF
";

#[test]
fn openmetrics_ignores_full() {
    assert_eq!(body(Format::OpenMetrics, false), OPENMETRICS);
    assert_eq!(body(Format::OpenMetrics, true), OPENMETRICS);
}

fn header_pairs(format: Format) -> Vec<(String, String)> {
    render(&pool(), format, false, now()).headers
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn headers_in_php_fpm_order_and_spelling() {
    let expires = ("Expires", "Thu, 01 Jan 1970 00:00:00 GMT");
    let cache = (
        "Cache-Control",
        "no-cache, no-store, must-revalidate, max-age=0",
    );
    let cases = [
        (Format::Text, ("Content-type", "text/plain;charset=UTF-8")),
        (Format::Json, ("Content-Type", "application/json")),
        (Format::Xml, ("Content-type", "text/xml;charset=UTF-8")),
        (Format::Html, ("Content-type", "text/html;charset=UTF-8")),
        (
            Format::OpenMetrics,
            (
                "Content-Type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
        ),
    ];
    for (format, content_type) in cases {
        assert_eq!(header_pairs(format), pairs(&[expires, cache, content_type]));
    }
    let head = render_head();
    let default = ("Content-type", "text/html; charset=UTF-8");
    assert_eq!(head.headers, pairs(&[expires, cache, default]));
    assert_eq!(head.body, "");
}

#[test]
fn content_type_follows_default_charset() {
    let latin = render_with_charset(&pool(), Format::Xml, false, now(), "ISO-8859-1");
    let expected = ("Content-type".into(), "text/xml;charset=ISO-8859-1".into());
    assert_eq!(latin.headers[2], expected);
    let none = render_with_charset(&pool(), Format::Text, false, now(), "");
    assert_eq!(
        none.headers[2],
        ("Content-Type".into(), "text/plain".into())
    );
    let json = render_with_charset(&pool(), Format::Json, false, now(), "");
    assert_eq!(
        json.headers[2],
        ("Content-Type".into(), "application/json".into())
    );
}

#[test]
fn a_worker_script_follows_php_fpms_fields() {
    let status = PoolStatus {
        worker_script: Some(WorkerScriptStatus {
            script: "/srv/app/public/index.php".into(),
            boots: 4,
            requests: 90,
            busy_threads: 1,
        }),
        ..pool()
    };
    let body = |format| render(&status, format, false, now()).body;
    assert!(body(Format::Text).contains(
        "slow requests:        5\nworker script:        /srv/app/public/index.php\n\
         worker script boots:  4\nworker script requests: 90\nworker script busy threads: 1\n"
    ));
    assert!(body(Format::Json).contains(
        r#""slow requests":5,"worker script":"/srv/app/public/index.php","worker script boots":4,"#
    ));
    assert!(body(Format::Xml).contains("<worker-script-requests>90</worker-script-requests>"));
    assert!(!render(&pool(), Format::Text, false, now())
        .body
        .contains("worker"));
}

#[test]
fn php_84_shows_the_memory_peak_in_every_format() {
    let status = PoolStatus {
        memory_peak: Some(2_097_152),
        ..pool()
    };
    let body = |format| render(&status, format, false, now()).body;
    assert!(body(Format::Text).contains("slow requests:        5\nmemory peak:          2097152\n"));
    assert!(body(Format::Json).contains(r#""slow requests":5,"memory peak":2097152"#));
    assert!(body(Format::Xml)
        .contains("<slow-requests>5</slow-requests>\n<memory-peak>2097152</memory-peak>\n"));
    assert!(body(Format::Html).contains("<tr><th>memory peak</th><td>2097152</td></tr>"));
    assert!(body(Format::OpenMetrics).contains(
        "# HELP phpfpm_memory_peak The memory usage peak since FPM has started.\n\
         # TYPE phpfpm_memory_peak gauge\nphpfpm_memory_peak 2097152\n# EOF\n"
    ));
    assert!(!render(&pool(), Format::Text, false, now())
        .body
        .contains("memory peak"));
}

#[test]
fn dates_in_the_moments_own_offset() {
    assert_eq!(local_date(at(0, 0)), "01/Jan/1970:00:00:00 +0000");
    assert_eq!(local_date(at(0, -1)), "31/Dec/1969:23:59:59 -0000");
    assert_eq!(local_date(at(951_782_400, 0)), "29/Feb/2000:00:00:00 +0000");
    assert_eq!(
        local_date(at(4_102_444_799, 0)),
        "31/Dec/2099:23:59:59 +0000"
    );
    assert_eq!(
        local_date(at(4_107_542_400, 0)),
        "01/Mar/2100:00:00:00 +0000"
    );
    assert_eq!(
        local_date(at(1_700_000_000, 20_700)),
        "15/Nov/2023:03:58:20 +0545"
    );
    assert_eq!(
        local_date(at(1_700_000_000, -36_000)),
        "14/Nov/2023:12:13:20 -1000"
    );
}

#[test]
fn start_since_never_negative() {
    let mut status = pool();
    status.start_time = at(START + 1000, 0);
    assert!(render(&status, Format::Text, false, now())
        .body
        .contains("start since:          0\n"));
}

#[test]
fn cpu_printed_from_single_precision() {
    let mut status = pool();
    status.procs = vec![served()];
    for (cpu, shown) in [
        (0.125, "0.12"),
        (0.375, "0.38"),
        (33.335, "33.33"),
        (100.0, "100.00"),
    ] {
        status.procs[0].last_request_cpu = cpu;
        let body = render(&status, Format::Json, true, now()).body;
        assert!(
            body.contains(&format!("\"last request cpu\":{shown},")),
            "{cpu}: {body}"
        );
    }
}

#[test]
fn only_an_idle_process_shows_cpu_and_memory() {
    let mut status = pool();
    for state in [
        ProcState::ReadingHeaders,
        ProcState::Ending,
        ProcState::Finishing,
    ] {
        status.procs = vec![ProcStatus { state, ..served() }];
        let body = render(&status, Format::Xml, true, now()).body;
        assert!(body.contains(&format!("<state>{}</state>", state.name())));
        assert!(body.contains("<last-request-cpu>0.00</last-request-cpu>"));
        assert!(body.contains("<last-request-memory>0</last-request-memory>"));
    }
}

#[test]
fn json_escapes_the_uri_only() {
    let esc = escape_json("a\"\\/\u{8}\u{c}\n\r\t\u{1}\u{7f}<>&'é€😀");
    assert_eq!(
        esc,
        concat!(
            r#"a\"\\\/\b\f\n\r\t\u0001"#,
            "\u{7f}",
            r#"<>&'\u00e9\u20ac\ud83d\ude00"#
        )
    );
    let mut status = pool();
    status.pool = "a\"b".into();
    status.procs = vec![ProcStatus {
        user: "u\"/".into(),
        script: "/x\"y".into(),
        query_string: String::new(),
        ..served()
    }];
    let body = render(&status, Format::Json, true, now()).body;
    assert!(body.starts_with("{\"pool\":\"a\"b\","));
    assert!(body.contains("\"request uri\":\"\\/index.php\","));
    assert!(body.contains("\"user\":\"u\"/\",\"script\":\"/x\"y\""));
}

#[test]
fn xml_escapes_the_uri_only() {
    let esc = escape_xml("&<>\"'\t\n\r\u{1}\u{1f}\u{7f}\u{fffe}\u{ffff}é");
    assert_eq!(
        esc,
        "&amp;&lt;&gt;&quot;'\t\n\r\u{fffd}\u{fffd}\u{7f}\u{fffd}\u{fffd}é"
    );
    let mut status = pool();
    status.procs = vec![ProcStatus {
        request_uri: "/a&b".into(),
        script: "/a&b".into(),
        query_string: String::new(),
        ..served()
    }];
    let body = render(&status, Format::Html, true, now()).body;
    assert!(body.contains("<td>/a&amp;b</td><td>42</td><td>bob</td><td>/a&b</td>"));
}

#[test]
fn query_without_uri_keeps_the_dash() {
    let mut status = pool();
    status.procs = vec![ProcStatus {
        request_uri: String::new(),
        ..serving()
    }];
    let body = render(&status, Format::Text, true, now()).body;
    assert!(body.contains("request URI:          -?json&full\n"));
}

#[test]
fn html_columns_are_the_process_fields() {
    let names: Vec<&str> = proc_fields(&served(), HTML_STYLE, 0)
        .iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, HTML_PROC_COLUMNS);
}

#[test]
fn other_process_managers_and_pool_names() {
    let mut status = pool();
    status.process_manager = Pm::Ondemand;
    status.pool = "api".into();
    let body = render(&status, Format::OpenMetrics, false, now()).body;
    assert!(body.starts_with(
        "# HELP phpfpm_up Could pool api using a ondemand PM on PHP-FPM be reached?\n"
    ));
    status.process_manager = Pm::Dynamic;
    let body = render(&status, Format::Text, false, now()).body;
    assert!(body.contains("process manager:      dynamic\n"));
}
