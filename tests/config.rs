//! `tfpm -t -y FILE` checks a php-fpm config like `php-fpm -t`: Debian's files
//! pass, broken ones fail with php-fpm's messages and exit code 78.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config/debian")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tfpm-config-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `tfpm -t -R -y path` (-R: these pools name no user, and the tests may
/// run as root, where php-fpm wants one).
fn test(path: &Path) -> Output {
    Command::new(TFPM)
        .args(["-t", "-R", "-y"])
        .arg(path)
        .output()
        .expect("run tfpm")
}

/// What tfpm printed, without the php-fpm time at the start of each line.
fn stderr(out: &Output) -> String {
    strip_times(&String::from_utf8_lossy(&out.stderr))
}

fn strip_times(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match line.find("] ") {
            Some(at) if line.starts_with('[') && at == 21 => &line[at + 2..],
            _ => line,
        })
        .collect()
}

#[test]
fn debian_config_passes() {
    let text = std::fs::read_to_string(fixtures().join("php-fpm.conf")).unwrap();
    let include = format!("include={}/pool.d/*.conf", fixtures().display());
    let text = text.replace("include=/etc/php/8.2/fpm/pool.d/*.conf", &include);
    let path = temp_dir("debian").join("php-fpm.conf");
    std::fs::write(&path, text).unwrap();

    let out = test(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let expected = format!(
        "NOTICE: configuration file {} test is successful\n\n",
        path.display()
    );
    assert!(err.ends_with(&expected), "{err}");
}

#[test]
fn debian_pool_file_alone_passes() {
    let path = fixtures().join("pool.d/www.conf");
    let out = test(&path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn unknown_entry_fails_with_file_and_line() {
    let path = temp_dir("broken").join("php-fpm.conf");
    std::fs::write(&path, "[www]\nlisten = 9000\nbogus = 1\n").unwrap();
    let out = test(&path);
    assert_eq!(out.status.code(), Some(78));
    let p = path.display();
    assert_eq!(
        stderr(&out),
        format!(
            "ERROR: [{p}:3] unknown entry 'bogus'\n\
             ERROR: failed to load configuration file '{p}'\n\
             ERROR: FPM initialization failed\n"
        )
    );
}

#[test]
fn failed_checks_exit_78() {
    let path = temp_dir("nopm").join("php-fpm.conf");
    std::fs::write(&path, "[www]\nlisten = 9000\n").unwrap();
    let out = test(&path);
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        stderr(&out),
        "ALERT: [pool www] the process manager is missing (static, dynamic or ondemand)\n\
         ERROR: failed to post process the configuration\n\
         ERROR: FPM initialization failed\n"
    );
}

#[test]
fn missing_file_exits_78() {
    let out = test(Path::new("/nonexistent/php-fpm.conf"));
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).starts_with("ERROR: failed to open configuration file"));
}

#[test]
fn test_flag_needs_a_config() {
    let out = Command::new(TFPM).arg("-t").output().unwrap();
    assert_eq!(out.status.code(), Some(64)); // EX_USAGE, as php-fpm
}
