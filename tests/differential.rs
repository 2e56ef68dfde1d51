//! The differential harness (issue 5): the same requests, through nginx, to
//! php-fpm from our PHP build and to tfpm, and the answers compared.
//!
//! For each ini [`Profile`] the corpus uses, php-fpm and tfpm start with the
//! same `-n -d ...` settings, each behind its own nginx on the repository's
//! `nginx-conf/tfpm-php.conf` plus the locations of
//! `fcgi-tests/diff/locations.conf`, serving `tests/docroot/diff`. Every case
//! of [`corpus::all`] runs against both (cases run concurrently), and each
//! side is written down as a transcript: status line, headers, body, and for
//! the cases that ask, what nginx logged as "FastCGI sent in stderr". What
//! differs by nature is masked (`Date`, the nginx port, temp paths, session
//! ids). The test fails on any case whose transcripts differ, unless
//! [`intended`] lists it, and then lists every such case with a line diff.
//!
//! Both full transcripts and the report are written to
//! `$CARGO_TARGET_TMPDIR/differential/`. `TFPM_DIFF_CASES=a,b` runs only the
//! cases whose names contain `a` or `b`. See fcgi-tests/DIFFERENTIAL.md.

#[path = "differential/corpus.rs"]
mod corpus;
#[path = "differential/intended.rs"]
mod intended;
#[path = "differential/transcript.rs"]
mod transcript;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fpm::PhpFpm;
use fcgi_tests::nginx::Nginx;
use fcgi_tests::tempfile::{self, TempDir};
use fcgi_tests::{docroot, repo_root};

use corpus::{Case, Profile, Start};
use transcript::{Exchange, Masks, Reply};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
/// php-fpm workers per profile: each connection nginx keeps alive holds one.
const FPM_CHILDREN: usize = 16;
const TFPM_THREADS: &str = "8";
/// Cases in flight at once (each sends to both daemons at the same time).
const RUNNERS: usize = 8;
const MIN_CASES: usize = 150;

/// What the two stacks of every profile share: a temp dir, the docroot, the nginx locations.
struct World {
    tmp: TempDir,
    docroot: PathBuf,
    locations: String,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::Builder::new()
            .prefix("tfpm-diff-")
            .tempdir()
            .expect("temp dir");
        for dir in ["sessions", "uploads"] {
            std::fs::create_dir(tmp.path().join(dir)).expect("create temp subdir");
        }
        let conf = repo_root().join("fcgi-tests/diff/locations.conf");
        let locations = std::fs::read_to_string(&conf)
            .unwrap_or_else(|e| panic!("read {}: {e}", conf.display()));
        let outside = docroot().join("hello.php");
        World {
            tmp,
            docroot: docroot().join("diff"),
            locations: locations.replace("@OUTSIDE@", &outside.display().to_string()),
        }
    }

    fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// The `-d` settings of `profile`, the same for php-fpm and tfpm.
    fn ini(&self, profile: Profile) -> Vec<String> {
        let tmp = self.tmp().display();
        let mut ini = vec![
            "zend_extension=opcache".to_string(),
            "date.timezone=UTC".to_string(),
            "log_errors=1".to_string(),
            format!("session.save_path={tmp}/sessions"),
            format!("upload_tmp_dir={tmp}/uploads"),
            "post_max_size=1M".to_string(),
            "upload_max_filesize=256K".to_string(),
            "max_file_uploads=3".to_string(),
        ];
        let display = if profile == Profile::Display {
            "1"
        } else {
            "0"
        };
        ini.push(format!("display_errors={display}"));
        match profile {
            Profile::Default | Profile::Display => {}
            Profile::NoPathinfo => ini.push("cgi.fix_pathinfo=0".into()),
            Profile::Basedir => ini.push(format!("open_basedir={}:{tmp}", self.docroot.display())),
            Profile::NoPost => ini.push("enable_post_data_reading=0".into()),
        }
        ini
    }
}

/// The daemon behind one nginx.
enum Daemon {
    Fpm(PhpFpm),
    Tfpm(Tfpm),
}

/// A daemon with its nginx. Fields drop in order: nginx first.
struct Stack {
    name: &'static str,
    nginx: Nginx,
    daemon: Daemon,
}

impl Stack {
    fn fpm(world: &World, ini: &[String]) -> Stack {
        let defines: Vec<&str> = ini.iter().map(String::as_str).collect();
        let fpm = PhpFpm::start(FPM_CHILDREN, "ping.path = /fpm-ping", &defines);
        let nginx = Nginx::start(&fpm.addr().to_string(), &world.docroot, &world.locations);
        Stack {
            name: "php-fpm",
            nginx,
            daemon: Daemon::Fpm(fpm),
        }
    }

    fn tfpm(world: &World, ini: &[String]) -> Stack {
        let mut args = vec!["-n", "--listen", "127.0.0.1:0", "--threads", TFPM_THREADS];
        // php-fpm's ping.path above; ping.response defaults to "pong" in both.
        args.extend(["--ping-path", "/fpm-ping"]);
        ini.iter().for_each(|setting| args.extend(["-d", setting]));
        let tfpm = Tfpm::start(Path::new(TFPM), &args);
        let nginx = Nginx::start(&tfpm.addr().to_string(), &world.docroot, &world.locations);
        Stack {
            name: "tfpm",
            nginx,
            daemon: Daemon::Tfpm(tfpm),
        }
    }

    /// What differs between the stacks by nature, for the case with token `uniq`.
    fn masks(&self, world: &World, uniq: &str, steps: usize) -> Masks {
        let port = self.nginx.addr().port();
        let mut masks = Masks::default();
        masks.add(world.tmp().display().to_string(), "<tmp>");
        for step in 0..steps {
            masks.add(host_name(uniq, step), "localhost");
        }
        masks.add(uniq, "<uniq>");
        masks.add(format!("'{port}'"), "'<nginx port>'");
        masks.add(format!(":{port}"), ":<nginx port>");
        masks
    }

    /// Why the daemon is no longer usable, if it died.
    fn death(&self) -> Option<String> {
        match &self.daemon {
            Daemon::Tfpm(tfpm) if !alive(tfpm.pid()) => Some(format!(
                "tfpm exited during the run; its log ends:\n{}",
                fcgi_tests::tail(&tfpm.log(), 4000)
            )),
            _ => None,
        }
    }

    /// Lines of the daemon's own log worth a look (crashes, panics).
    fn notable_log(&self) -> Vec<String> {
        let (log, marks): (String, &[&str]) = match &self.daemon {
            Daemon::Fpm(fpm) => (fpm.log(), &["exited on signal", "ERROR"]),
            Daemon::Tfpm(tfpm) => (tfpm.log(), &["panicked", "ERROR", "signal"]),
        };
        log.lines()
            .filter(|l| marks.iter().any(|m| l.contains(m)))
            .map(str::to_string)
            .collect()
    }
}

/// Whether the process `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(") ")
        .next()
        .and_then(|rest| rest.chars().next());
    matches!(state, Some(s) if s != 'Z' && s != 'X')
}

/// php-fpm and tfpm on the ini settings of one profile.
struct Pair {
    fpm: Stack,
    tfpm: Stack,
}

/// Starts a pair for each profile in `profiles`, all at once.
fn start_pairs(world: &World, profiles: &[Profile]) -> BTreeMap<Profile, Pair> {
    thread::scope(|s| {
        let starting: Vec<_> = profiles
            .iter()
            .map(|&profile| {
                let fpm = s.spawn(move || Stack::fpm(world, &world.ini(profile)));
                let tfpm = s.spawn(move || Stack::tfpm(world, &world.ini(profile)));
                (profile, fpm, tfpm)
            })
            .collect();
        let started = starting.into_iter().map(|(profile, fpm, tfpm)| {
            let fpm = fpm.join().expect("php-fpm did not start");
            let tfpm = tfpm.join().expect("tfpm did not start");
            (profile, Pair { fpm, tfpm })
        });
        started.collect()
    })
}

/// The cookies a case has been given so far.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    /// The Cookie header value (empty if there are none).
    fn header(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        pairs.join("; ")
    }

    /// Takes in the Set-Cookie headers of `reply`.
    fn update(&mut self, reply: &Reply) {
        for set_cookie in reply.values("Set-Cookie") {
            let pair = set_cookie.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            self.0.retain(|(n, _)| n != name);
            if !value.is_empty() && value != "deleted" {
                self.0.push((name.to_string(), value.to_string()));
            }
        }
    }
}

/// Runs the steps of `case` against `stack`, in order or overlapping as the case says.
fn run_case(case: &Case, stack: &Stack, uniq: &str) -> Vec<Exchange> {
    let addr = stack.nginx.addr();
    let jar = Mutex::new(Jar::default());
    thread::scope(|s| {
        let mut running = Vec::new();
        let mut done = Vec::new();
        for (n, step) in case.steps.iter().enumerate() {
            match step.start {
                Start::AfterPrevious => done.extend(running.drain(..).map(join)),
                Start::Overlap(delay) => thread::sleep(delay),
            }
            let jar = &jar;
            let target = step.req.target.replace("{uniq}", uniq);
            let host = host_name(uniq, n);
            running.push(s.spawn(move || {
                let cookie = jar.lock().expect("jar").header();
                let exchange = transcript::send(addr, &step.req, &target, &host, &cookie);
                if let Ok(reply) = &exchange.reply {
                    jar.lock().expect("jar").update(reply);
                }
                exchange
            }));
        }
        done.extend(running.into_iter().map(join));
        done
    })
}

fn join<T>(handle: thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().expect("request thread panicked")
}

/// What one case gave on both stacks.
struct Outcome {
    fpm: Vec<Exchange>,
    tfpm: Vec<Exchange>,
}

/// Runs every case on both stacks of its profile, [`RUNNERS`] cases at a time.
fn run_all(cases: &[Case], pairs: &BTreeMap<Profile, Pair>) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(BTreeMap::new());
    thread::scope(|s| {
        for _ in 0..RUNNERS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { return };
                let pair = &pairs[&case.profile];
                let outcome = thread::scope(|s| {
                    let fpm = s.spawn(|| run_case(case, &pair.fpm, &uniq(i, "fpm")));
                    let tfpm = run_case(case, &pair.tfpm, &uniq(i, "tfpm"));
                    Outcome {
                        fpm: join(fpm),
                        tfpm,
                    }
                });
                results.lock().expect("results").insert(i, outcome);
            });
        }
    });
    results
        .into_inner()
        .expect("results")
        .into_values()
        .collect()
}

/// A token unique to a case and a stack.
fn uniq(case: usize, stack: &str) -> String {
    format!("u{}-{case}-{stack}", std::process::id())
}

/// The Host header of request `step` of the case with token `uniq`.
fn host_name(uniq: &str, step: usize) -> String {
    format!("{uniq}-{step}.localhost")
}

/// One record of an nginx error log.
struct LogRecord {
    level: String,
    /// The message without time, pid, connection and client details.
    message: String,
    /// The Host of the request nginx attributes it to.
    host: String,
}

/// The records of nginx's error.log; continuation lines (a newline inside
/// what PHP wrote to stderr) belong to the record before.
fn log_records(log: &str) -> Vec<LogRecord> {
    let mut records: Vec<String> = Vec::new();
    for line in log.lines() {
        let starts_record = line.len() > 20 && line.as_bytes()[4] == b'/' && line.contains(" [");
        match records.last_mut() {
            Some(last) if !starts_record => {
                last.push('\n');
                last.push_str(line);
            }
            _ => records.push(line.to_string()),
        }
    }
    records.iter().filter_map(|r| parse_record(r)).collect()
}

fn parse_record(record: &str) -> Option<LogRecord> {
    let level_start = record.find(" [")? + 2;
    let level_end = level_start + record[level_start..].find(']')?;
    let level = record[level_start..level_end].to_string();
    // "... [error] 12#12: *34 message, client: ..., request: "GET / HTTP/1.1", ..."
    let after_level = &record[level_end + 1..];
    let message_start = after_level.find(": *").map(|i| i + 3)?;
    let rest = &after_level[message_start..];
    let rest = rest
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start();
    let message_end = rest.rfind(", client: ").unwrap_or(rest.len());
    const HOST: &str = ", host: \"";
    let host = rest
        .rfind(HOST)
        .and_then(|i| rest[i + HOST.len()..].split('"').next())
        .unwrap_or_default()
        .to_string();
    Some(LogRecord {
        level,
        message: rest[..message_end].to_string(),
        host,
    })
}

/// The log lines of `exchanges` that the transcript shows: errors, and the
/// FastCGI stderr only if the case compares it. Connection resets are left
/// out: php-fpm resets a kept connection when it finds body records it did
/// not read (a body without CONTENT_LENGTH), and whether nginx notices before
/// it is done with the response is a race. What the client got still shows.
fn case_log(records: &[LogRecord], exchanges: &[Exchange], with_stderr: bool) -> Vec<String> {
    let hosts: Vec<&str> = exchanges.iter().map(|e| e.host.as_str()).collect();
    let serious = ["error", "crit", "alert", "emerg"];
    records
        .iter()
        .filter(|r| hosts.contains(&r.host.as_str()))
        .filter(|r| serious.contains(&r.level.as_str()))
        .filter(|r| !r.message.contains("(104: Connection reset by peer)"))
        .filter(|r| with_stderr || !r.message.starts_with("FastCGI sent in stderr"))
        .map(|r| format!("[{}] {}", r.level, r.message))
        .collect()
}

/// The transcript of one case on one stack, masked.
fn transcript_of(
    case: &Case,
    exchanges: &[Exchange],
    records: &[LogRecord],
    masks: &Masks,
) -> String {
    let mut out = format!("### {} [{}]\n", case.name, case.profile.name());
    for exchange in exchanges {
        transcript::render_exchange(&mut out, exchange, case.ordered_headers);
    }
    let log = case_log(records, exchanges, case.stderr);
    if !log.is_empty() {
        out.push_str("--- nginx error.log ---\n");
        log.iter().for_each(|line| {
            out.push_str(line);
            out.push('\n');
        });
    }
    masks.apply(&out)
}

fn stacks(pairs: &BTreeMap<Profile, Pair>) -> impl Iterator<Item = &Stack> {
    pairs.values().flat_map(|p| [&p.fpm, &p.tfpm])
}

/// What the report adds at its end: notable lines of the daemons' own logs,
/// and nginx records that could not be given to a case.
fn notes(pairs: &BTreeMap<Profile, Pair>) -> Vec<String> {
    let daemon_lines = stacks(pairs).flat_map(|s| {
        let lines = s.notable_log().into_iter();
        lines.map(move |l| format!("{}: {l}", s.name))
    });
    daemon_lines.chain(unattributed(pairs)).collect()
}

/// Error records of the nginx logs that name no request: nginx cuts its log
/// lines at 2048 bytes, and a long stderr message loses the request details.
fn unattributed(pairs: &BTreeMap<Profile, Pair>) -> Vec<String> {
    let stacks = pairs
        .iter()
        .flat_map(|(p, pair)| [(p, &pair.fpm), (p, &pair.tfpm)]);
    let mut lines = Vec::new();
    for (profile, stack) in stacks {
        let records = log_records(&stack.nginx.error_log());
        let orphans = records
            .into_iter()
            .filter(|r| r.host.is_empty() && r.level == "error");
        lines.extend(orphans.map(|r| {
            let start: String = r.message.chars().take(160).collect();
            format!(
                "{} [{}], a record with no request (cut at 2048 bytes?): {start}...",
                stack.name,
                profile.name()
            )
        }));
    }
    lines
}

/// The verdict on one case.
enum Verdict {
    Same,
    Intended,
    /// A difference not in the intended list: (php-fpm, tfpm).
    Differs(String, String),
    /// Listed as intended but no longer different.
    Stale,
}

struct Compared {
    fpm: String,
    tfpm: String,
    verdict: Verdict,
}

fn compare(
    world: &World,
    cases: &[Case],
    outcomes: &[Outcome],
    pairs: &BTreeMap<Profile, Pair>,
) -> Vec<Compared> {
    let logs: BTreeMap<(Profile, &str), Vec<LogRecord>> = pairs
        .iter()
        .flat_map(|(&p, pair)| [(p, &pair.fpm), (p, &pair.tfpm)])
        .map(|(p, stack)| ((p, stack.name), log_records(&stack.nginx.error_log())))
        .collect();
    cases
        .iter()
        .zip(outcomes)
        .enumerate()
        .map(|(i, (case, outcome))| {
            let pair = &pairs[&case.profile];
            let side = |stack: &Stack, exchanges: &[Exchange], tag: &str| {
                let records = &logs[&(case.profile, stack.name)];
                let masks = stack.masks(world, &uniq(i, tag), case.steps.len());
                transcript_of(case, exchanges, records, &masks)
            };
            let fpm = side(&pair.fpm, &outcome.fpm, "fpm");
            let tfpm = side(&pair.tfpm, &outcome.tfpm, "tfpm");
            let verdict = match (fpm == tfpm, intended::reason(&case.name).is_some()) {
                (true, false) => Verdict::Same,
                (true, true) => Verdict::Stale,
                (false, true) => Verdict::Intended,
                (false, false) => Verdict::Differs(fpm.clone(), tfpm.clone()),
            };
            Compared { fpm, tfpm, verdict }
        })
        .collect()
}

/// The report of every failing case, with diffs.
fn report(cases: &[Case], compared: &[Compared], deaths: &[String], notes: &[String]) -> String {
    let mut out = String::new();
    let count = |f: fn(&Verdict) -> bool| compared.iter().filter(|c| f(&c.verdict)).count();
    let _ = writeln!(
        out,
        "{} cases: {} same, {} intended differences, {} unexplained differences, {} stale intended entries",
        cases.len(),
        count(|v| matches!(v, Verdict::Same)),
        count(|v| matches!(v, Verdict::Intended)),
        count(|v| matches!(v, Verdict::Differs(..))),
        count(|v| matches!(v, Verdict::Stale)),
    );
    for death in deaths {
        let _ = writeln!(out, "\n!!! {death}");
    }
    for (case, c) in cases.iter().zip(compared) {
        match &c.verdict {
            Verdict::Differs(fpm, tfpm) => {
                let _ = write!(
                    out,
                    "\n=== {} [{}]: php-fpm (-) and tfpm (+) differ\n{}",
                    case.name,
                    case.profile.name(),
                    transcript::diff(fpm, tfpm)
                );
            }
            Verdict::Stale => {
                let _ = writeln!(
                    out,
                    "\n=== {}: listed in intended.rs but answers alike now; remove the entry",
                    case.name
                );
            }
            Verdict::Same | Verdict::Intended => {}
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(
            out,
            "\n--- notable daemon log lines ---\n{}",
            notes.join("\n")
        );
    }
    out
}

/// Writes both full transcripts, the report and the raw nginx error logs
/// under the target temp dir.
fn write_files(compared: &[Compared], report: &str, pairs: &BTreeMap<Profile, Pair>) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create report dir");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"))
    };
    let join = |f: fn(&Compared) -> &str| compared.iter().map(f).collect::<Vec<_>>().join("\n");
    write("php-fpm.txt", &join(|c| &c.fpm));
    write("tfpm.txt", &join(|c| &c.tfpm));
    write("report.txt", report);
    for (profile, pair) in pairs {
        for stack in [&pair.fpm, &pair.tfpm] {
            let name = format!("nginx-{}-{}.log", profile.name(), stack.name);
            write(&name, &stack.nginx.error_log());
        }
    }
    dir
}

/// Checks the corpus itself: enough cases, unique names, intended entries that exist.
fn check_corpus(cases: &[Case]) {
    assert!(
        cases.len() >= MIN_CASES,
        "the corpus has {} cases, fewer than {MIN_CASES}",
        cases.len()
    );
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let twice: Vec<&&str> = names
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| &w[0])
        .collect();
    assert!(twice.is_empty(), "case names used twice: {twice:?}");
    for (name, _) in intended::INTENDED {
        assert!(
            names.binary_search(name).is_ok(),
            "intended.rs lists {name:?}, which is no case"
        );
    }
}

/// The cases `TFPM_DIFF_CASES` selects (all if unset).
fn selected(cases: Vec<Case>) -> Vec<Case> {
    let Ok(filter) = std::env::var("TFPM_DIFF_CASES") else {
        return cases;
    };
    let words: Vec<&str> = filter.split(',').filter(|w| !w.is_empty()).collect();
    cases
        .into_iter()
        .filter(|c| words.iter().any(|w| c.name.contains(w)))
        .collect()
}

#[test]
fn php_fpm_and_tfpm_answer_alike() {
    let all = corpus::all();
    check_corpus(&all);
    let cases = selected(all);
    let world = World::new();
    let mut profiles: Vec<Profile> = cases.iter().map(|c| c.profile).collect();
    profiles.sort();
    profiles.dedup();
    let pairs = start_pairs(&world, &profiles);
    let outcomes = run_all(&cases, &pairs);
    let compared = compare(&world, &cases, &outcomes, &pairs);
    let deaths: Vec<String> = stacks(&pairs).filter_map(Stack::death).collect();
    let report = report(&cases, &compared, &deaths, &notes(&pairs));
    let dir = write_files(&compared, &report, &pairs);
    let failed = !deaths.is_empty()
        || compared
            .iter()
            .any(|c| matches!(c.verdict, Verdict::Differs(..) | Verdict::Stale));
    assert!(
        !failed,
        "{report}\nfull transcripts: {}/php-fpm.txt and tfpm.txt",
        dir.display()
    );
    eprintln!("{}", report.lines().next().unwrap_or_default());
}
