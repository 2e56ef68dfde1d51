//! Build script: finds a ZTS PHP, checks that it suits tfpm, compiles the C
//! shim in `ffi/` and generates Rust bindings for the shim's header only.
//!
//! PHP is found through `PHP_CONFIG` (a path to `php-config`), else in the
//! cache that `ffi/build-php.sh` fills (`TFPM_PHP_CACHE`, default
//! `/var/cache/tfpm/php`): the newest finished build of the PHP version that
//! `TFPM_PHP_VERSION` names (default the same as build-php.sh's), never a
//! build of another version.
//!
//! Without the `php` feature (the lib is then only the FastCGI protocol layer,
//! e.g. for the fuzz targets) it does nothing: no PHP is needed or linked.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const DEFAULT_CACHE: &str = "/var/cache/tfpm/php";
/// The PHP version taken from the cache when `TFPM_PHP_VERSION` is unset:
/// the same default as `ffi/build-php.sh`.
const DEFAULT_PHP_VERSION: &str = "8.4";
/// The PHP versions the shim supports (`PHP_VERSION_ID` guards in `ffi/`).
const OLDEST_PHP: (u32, u32) = (8, 2);
const NEWEST_PHP: (u32, u32) = (8, 4);
const SHIM_SOURCES: &[&str] = &[
    "ffi/tfpm_shim.c",
    "ffi/tfpm_signals.c",
    "ffi/tfpm_isolation.c",
    "ffi/tfpm_stack.c",
    "ffi/tfpm_slowlog.c",
    "ffi/tfpm_request_ini.c",
    "ffi/tfpm_request_classes.c",
    "ffi/tfpm_worker.c",
    "ffi/tfpm_fork.c",
    "ffi/tfpm_pcntl.c",
];
const SHIM_HEADERS: &[&str] = &["ffi/tfpm_shim.h", "ffi/tfpm_internal.h"];

fn main() {
    if env::var_os("CARGO_FEATURE_PHP").is_none() {
        return;
    }
    println!("cargo:rerun-if-env-changed=PHP_CONFIG");
    println!("cargo:rerun-if-env-changed=TFPM_PHP_CACHE");
    println!("cargo:rerun-if-env-changed=TFPM_PHP_VERSION");
    for file in SHIM_SOURCES.iter().chain(SHIM_HEADERS) {
        println!("cargo:rerun-if-changed={file}");
    }

    let php_config = find_php_config();
    let php = Php::query(&php_config);
    php.check_version();
    php.check_features();
    compile_shim(&php);
    generate_bindings();
    link(&php);
}

/// The PHP version asked for with `TFPM_PHP_VERSION` ("8.4"), if any.
fn wanted_version() -> Option<String> {
    env::var("TFPM_PHP_VERSION")
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `PHP_CONFIG`, else the most recently finished build of the wanted version
/// in the cache. build-php.sh names each build `php<version>-<full
/// version>-<key>`, so only directories named after the wanted version count.
fn find_php_config() -> PathBuf {
    if let Some(path) = env::var_os("PHP_CONFIG") {
        return PathBuf::from(path);
    }
    let version = wanted_version().unwrap_or_else(|| DEFAULT_PHP_VERSION.to_string());
    let cache = env::var("TFPM_PHP_CACHE").unwrap_or_else(|_| DEFAULT_CACHE.to_string());
    println!("cargo:rerun-if-changed={cache}");
    let name_prefix = format!("php{version}-");
    let mut builds: Vec<PathBuf> = fs::read_dir(&cache)
        .map(|dir| dir.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    builds.retain(|d| {
        d.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&name_prefix))
            && d.join(".tfpm-complete").is_file()
            && d.join("bin/php-config").is_file()
    });
    builds.sort_by_key(|d| {
        fs::metadata(d.join(".tfpm-complete"))
            .and_then(|m| m.modified())
            .ok()
    });
    match builds.pop() {
        Some(dir) => dir.join("bin/php-config"),
        None => fail(&format!(
            "no PHP {version} build found in {cache}: run ffi/build-php.sh {version}, set \
             TFPM_PHP_VERSION to a version that is built there, or set \
             PHP_CONFIG=/path/to/php-config"
        )),
    }
}

/// What build.rs needs to know about one PHP install.
struct Php {
    include_dir: PathBuf,
    includes: Vec<String>,
    lib_dir: PathBuf,
    version: String,
    /// The scan dir compiled into this PHP (`php-config --ini-dir`).
    ini_dir: String,
}

impl Php {
    fn query(php_config: &Path) -> Php {
        let include_dir = PathBuf::from(run(php_config, "--include-dir"));
        let includes = run(php_config, "--includes")
            .split_whitespace()
            .filter_map(|f| f.strip_prefix("-I").map(str::to_string))
            .collect();
        let prefix = PathBuf::from(run(php_config, "--prefix"));
        let lib_dir = find_libphp(&prefix, php_config);
        let version = run(php_config, "--version");
        let ini_dir = run(php_config, "--ini-dir");
        Php {
            include_dir,
            includes,
            lib_dir,
            version,
            ini_dir,
        }
    }

    /// `(major, minor)` of `php-config --version` ("8.4.16" gives (8, 4)).
    fn major_minor(&self) -> Option<(u32, u32)> {
        let mut parts = self.version.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }

    /// Refuses a PHP version the shim does not support, and a PHP_CONFIG
    /// whose version is not the one TFPM_PHP_VERSION asks for.
    fn check_version(&self) {
        let Some((major, minor)) = self.major_minor() else {
            fail(&format!("cannot read the PHP version '{}'", self.version))
        };
        if let Some(wanted) = wanted_version() {
            if wanted != format!("{major}.{minor}") {
                fail(&format!(
                    "TFPM_PHP_VERSION={wanted}, but PHP_CONFIG's PHP is {}: unset one of them",
                    self.version
                ));
            }
        }
        if (major, minor) < OLDEST_PHP || (major, minor) > NEWEST_PHP {
            fail(&format!(
                "PHP {} is not supported: tfpm builds against PHP {}.{} to {}.{}",
                self.version, OLDEST_PHP.0, OLDEST_PHP.1, NEWEST_PHP.0, NEWEST_PHP.1
            ));
        }
    }

    /// Refuses a PHP that tfpm cannot host safely.
    fn check_features(&self) {
        let header = self.include_dir.join("main/php_config.h");
        let text = fs::read_to_string(&header)
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", header.display())));
        if !defines(&text, "ZTS") {
            fail(&format!(
                "PHP {} at {} is not thread-safe (ZTS). tfpm runs PHP on many threads; \
                 build PHP with --enable-zts (ffi/build-php.sh does).",
                self.version,
                self.include_dir.display()
            ));
        }
        if defines(&text, "ZEND_SIGNALS") {
            fail(&format!(
                "PHP {} was built with Zend Signals, which take over process-wide signal \
                 handlers that tfpm needs. Rebuild with --disable-zend-signals.",
                self.version
            ));
        }
        if !defines(&text, "ZEND_MAX_EXECUTION_TIMERS") {
            fail(&format!(
                "PHP {} lacks per-thread execution timers, so max_execution_time would not \
                 work per thread. Rebuild with --enable-zend-max-execution-timers.",
                self.version
            ));
        }
    }
}

/// Whether php_config.h has `#define NAME 1`.
fn defines(header: &str, name: &str) -> bool {
    header.lines().any(|line| {
        let mut words = line.split_whitespace();
        words.next() == Some("#define") && words.next() == Some(name) && words.next() == Some("1")
    })
}

fn find_libphp(prefix: &Path, php_config: &Path) -> PathBuf {
    let candidates = [
        prefix.join("lib/php"),
        prefix.join("lib"),
        prefix.join("lib64"),
    ];
    for dir in candidates {
        if dir.join("libphp.so").is_file() {
            return dir;
        }
    }
    fail(&format!(
        "no libphp.so under {}: the PHP behind {} must be configured with --enable-embed=shared",
        prefix.display(),
        php_config.display()
    ))
}

fn compile_shim(php: &Php) {
    let mut build = cc::Build::new();
    build.files(SHIM_SOURCES).include("ffi");
    for dir in &php.includes {
        build.include(dir);
    }
    // Same flags PHP itself uses for its code; no static TSRM cache (not exported).
    build
        .define("ZTS", "1")
        .define("_GNU_SOURCE", None)
        .flag_if_supported("-fvisibility=hidden")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(true)
        .warnings_into_errors(true);
    build.compile("tfpm_shim");
}

fn generate_bindings() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let bindings = bindgen::Builder::default()
        .header("ffi/tfpm_shim.h")
        .allowlist_function("tfpm_.*")
        .allowlist_type("tfpm_.*")
        .allowlist_var("TFPM_.*")
        .blocklist_function("tfpm_rs_.*")
        .layout_tests(false)
        .derive_default(true)
        .generate()
        .unwrap_or_else(|e| fail(&format!("bindgen failed on ffi/tfpm_shim.h: {e}")));
    bindings
        .write_to_file(out.join("tfpm_shim.rs"))
        .expect("write bindings");
}

fn link(php: &Php) {
    let lib = php.lib_dir.display();
    println!("cargo:rustc-link-search=native={lib}");
    println!("cargo:rustc-link-lib=dylib=php");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    // Not TFPM_PHP_VERSION: cargo also sets rustc-env variables in the
    // environment of `cargo test`, where that name is the version knob.
    println!("cargo:rustc-env=TFPM_LINKED_PHP_VERSION={}", php.version);
    println!("cargo:rustc-env=TFPM_LINKED_PHP_INI_DIR={}", php.ini_dir);
    println!("cargo:php_lib_dir={lib}");
}

fn run(php_config: &Path, arg: &str) -> String {
    let out = Command::new(php_config)
        .arg(arg)
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run {} {arg}: {e}", php_config.display())));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn fail(msg: &str) -> ! {
    eprintln!("\nerror: {msg}\n");
    panic!("{msg}");
}
