//! Build script: finds a ZTS PHP, checks that it suits tfpm, compiles the C
//! shim in `ffi/` and generates Rust bindings for the shim's header only.
//!
//! PHP is found through `PHP_CONFIG` (a path to `php-config`), else in the
//! cache that `ffi/build-php.sh` fills (`TFPM_PHP_CACHE`, default
//! `/var/cache/tfpm/php`).
//!
//! Without the `php` feature (the lib is then only the FastCGI protocol layer,
//! e.g. for the fuzz targets) it does nothing: no PHP is needed or linked.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const DEFAULT_CACHE: &str = "/var/cache/tfpm/php";
const SHIM_SOURCES: &[&str] = &[
    "ffi/tfpm_shim.c",
    "ffi/tfpm_signals.c",
    "ffi/tfpm_isolation.c",
    "ffi/tfpm_stack.c",
    "ffi/tfpm_slowlog.c",
];
const SHIM_HEADERS: &[&str] = &["ffi/tfpm_shim.h", "ffi/tfpm_internal.h"];

fn main() {
    if env::var_os("CARGO_FEATURE_PHP").is_none() {
        return;
    }
    println!("cargo:rerun-if-env-changed=PHP_CONFIG");
    println!("cargo:rerun-if-env-changed=TFPM_PHP_CACHE");
    for file in SHIM_SOURCES.iter().chain(SHIM_HEADERS) {
        println!("cargo:rerun-if-changed={file}");
    }

    let php_config = find_php_config();
    let php = Php::query(&php_config);
    php.check_features();
    compile_shim(&php);
    generate_bindings();
    link(&php);
}

/// `PHP_CONFIG`, else the most recently finished build in the cache.
fn find_php_config() -> PathBuf {
    if let Some(path) = env::var_os("PHP_CONFIG") {
        return PathBuf::from(path);
    }
    let cache = env::var("TFPM_PHP_CACHE").unwrap_or_else(|_| DEFAULT_CACHE.to_string());
    println!("cargo:rerun-if-changed={cache}");
    let mut builds: Vec<PathBuf> = fs::read_dir(&cache)
        .map(|dir| dir.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    builds.retain(|d| d.join(".tfpm-complete").is_file() && d.join("bin/php-config").is_file());
    builds.sort_by_key(|d| {
        fs::metadata(d.join(".tfpm-complete"))
            .and_then(|m| m.modified())
            .ok()
    });
    match builds.pop() {
        Some(dir) => dir.join("bin/php-config"),
        None => fail(&format!(
            "no PHP build found: set PHP_CONFIG=/path/to/php-config, or run ffi/build-php.sh \
             to build PHP into {cache}"
        )),
    }
}

/// What build.rs needs to know about one PHP install.
struct Php {
    include_dir: PathBuf,
    includes: Vec<String>,
    lib_dir: PathBuf,
    version: String,
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
        Php {
            include_dir,
            includes,
            lib_dir,
            version,
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
    println!("cargo:rustc-env=TFPM_PHP_VERSION={}", php.version);
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
