//! Which script a request runs, and the path variables PHP sees, derived from
//! the FastCGI params the way php-fpm derives them.
//!
//! php-fpm reads SCRIPT_FILENAME (or PATH_TRANSLATED), strips the
//! `proxy:fcgi://host` prefix Apache's mod_proxy_fcgi puts there, and with
//! `cgi.fix_pathinfo=1` walks a path that is not a file back to the script it
//! names (`/app/index.php/some/path` runs `/app/index.php`), setting
//! PATH_INFO, SCRIPT_NAME, SCRIPT_FILENAME and PATH_TRANSLATED and keeping
//! each replaced value as `ORIG_*`. This module computes the same outcome as
//! a list of edits to the params, so that in the common case (the web server
//! already names the file) nothing is copied.

use bytes::Bytes;

use crate::fcgi::Params;

const APACHE_PREFIXES: [&[u8]; 2] = [b"proxy:fcgi://", b"proxy:balancer://"];

/// The ini settings that shape the derivation.
#[derive(Debug, Clone, Default)]
pub(super) struct CgiSettings {
    /// `cgi.fix_pathinfo` (php-fpm's default: on).
    pub fix_pathinfo: bool,
    /// `cgi.discard_path`.
    pub discard_path: bool,
    /// `doc_root`, used when the web server sends no DOCUMENT_ROOT.
    pub doc_root: Option<Bytes>,
    /// php-fpm 8.4 gives PATH_INFO URL-decoded when it recovers it from
    /// Apache's `proxy:fcgi://` SCRIPT_FILENAME; 8.2 gives it raw.
    pub decode_apache_path_info: bool,
}

/// The outcome for one request.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Derived {
    /// Edits to the params, in order: `Some` replaces a value in place (or
    /// appends a new param), `None` removes the param.
    pub edits: Vec<(&'static [u8], Option<Bytes>)>,
    /// What PHP takes as the script's URI (PHP_SELF starts with it).
    pub request_uri: Option<Bytes>,
    /// The file to run; `None` means "Primary script unknown" (404).
    pub script: Option<Bytes>,
}

/// How the file system answers the two questions the walk asks.
pub(super) trait Files {
    /// Whether `path` resolves to something that exists (realpath succeeds).
    fn exists(&self, path: &[u8]) -> bool;
    /// Whether `path` is a regular file (stat, following links).
    fn is_file(&self, path: &[u8]) -> bool;
}

/// The real file system.
pub(super) struct RealFiles;

impl Files for RealFiles {
    fn exists(&self, path: &[u8]) -> bool {
        // One stat: it fails exactly where realpath would (a missing or
        // non-directory component), without realpath's stat per component.
        std::fs::metadata(os_path(path)).is_ok()
    }

    fn is_file(&self, path: &[u8]) -> bool {
        std::fs::metadata(os_path(path)).is_ok_and(|m| m.is_file())
    }
}

fn os_path(path: &[u8]) -> &std::path::Path {
    use std::os::unix::ffi::OsStrExt;
    std::path::Path::new(std::ffi::OsStr::from_bytes(path))
}

/// The params as the derivation sees them: the originals plus its edits.
struct Env<'a> {
    params: &'a Params,
    edits: Vec<(&'static [u8], Option<Bytes>)>,
}

impl Env<'_> {
    /// The current value (an empty one is still a value, as in php-fpm).
    fn get(&self, name: &[u8]) -> Option<Bytes> {
        match self.edits.iter().rev().find(|(n, _)| *n == name) {
            Some((_, value)) => value.clone(),
            None => self.params.get(name).cloned(),
        }
    }

    fn put(&mut self, name: &'static [u8], value: Option<Bytes>) -> Option<Bytes> {
        self.edits.push((name, value.clone()));
        value
    }

    /// Keeps `old` as `ORIG_<name>` when there was one.
    fn keep_orig(&mut self, orig_name: &'static [u8], old: &Option<Bytes>) {
        if let Some(old) = old {
            self.put(orig_name, Some(old.clone()));
        }
    }
}

/// Derives the script and path variables of a request.
pub(super) fn derive(params: &Params, settings: &CgiSettings, files: &dyn Files) -> Derived {
    let mut env = Env {
        params,
        edits: Vec::new(),
    };
    let Some(script) = env
        .get(b"SCRIPT_FILENAME")
        .or_else(|| env.get(b"PATH_TRANSLATED"))
    else {
        return Derived::default();
    };
    fix_iis_path_info(&mut env);
    let (script, apache) = strip_apache_prefix(&mut env, script);
    let (script, request_uri) = if settings.fix_pathinfo {
        fix_pathinfo(&mut env, settings, files, script, apache)
    } else {
        without_fix_pathinfo(&env, settings, script)
    };
    Derived {
        edits: env.edits,
        request_uri,
        script: script.filter(|s| is_valid_path(s)),
    }
}

/// IIS sends PATH_INFO with SCRIPT_NAME in front of it.
fn fix_iis_path_info(env: &mut Env) {
    let (Some(software), Some(name), Some(info)) = (
        env.get(b"SERVER_SOFTWARE"),
        env.get(b"SCRIPT_NAME"),
        env.get(b"PATH_INFO"),
    ) else {
        return;
    };
    if !software.starts_with(b"Microsoft-IIS") || !info.starts_with(&name) {
        return;
    }
    env.put(b"ORIG_PATH_INFO", Some(info.clone()));
    let rest = info.slice(name.len()..);
    env.put(b"PATH_INFO", (!rest.is_empty()).then_some(rest));
}

/// Apache's mod_proxy_fcgi sends `proxy:fcgi://host:port/path?query` as
/// SCRIPT_FILENAME: the path is the file. Returns the script and whether
/// Apache was here (then PATH_INFO has to be recovered from the path).
fn strip_apache_prefix(env: &mut Env, script: Bytes) -> (Bytes, bool) {
    let Some(filename) = env.get(b"SCRIPT_FILENAME") else {
        return (script, false);
    };
    let mut stripped = filename.clone();
    let mut apache = false;
    for prefix in APACHE_PREFIXES {
        if !starts_with_ignore_case(&stripped, prefix) {
            continue;
        }
        let rest = stripped.slice(prefix.len()..);
        if let Some(slash) = rest.iter().position(|&b| b == b'/') {
            stripped = rest.slice(slash..);
            apache = true;
        }
        if let Some(query) = stripped.iter().position(|&b| b == b'?') {
            stripped.truncate(query);
        }
    }
    if stripped == filename {
        return (script, apache);
    }
    // php-fpm rewrites the param itself, not through an ORIG_ copy.
    env.put(b"SCRIPT_FILENAME", Some(stripped.clone()));
    (stripped, apache)
}

fn starts_with_ignore_case(value: &[u8], prefix: &[u8]) -> bool {
    value.len() >= prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// What the request started with, before any fixing.
struct Originals {
    filename: Option<Bytes>,
    path_info: Option<Bytes>,
    path_translated: Option<Bytes>,
    script_name: Option<Bytes>,
}

/// `cgi.fix_pathinfo=1`: returns the script to run and the request URI.
fn fix_pathinfo(
    env: &mut Env,
    settings: &CgiSettings,
    files: &dyn Files,
    mut script: Bytes,
    apache: bool,
) -> (Option<Bytes>, Option<Bytes>) {
    let orig = Originals {
        filename: env.get(b"SCRIPT_FILENAME"),
        path_info: env.get(b"PATH_INFO"),
        path_translated: env.get(b"PATH_TRANSLATED"),
        script_name: env.get(b"SCRIPT_NAME"),
    };
    let mut docroot = env.get(b"DOCUMENT_ROOT");
    if docroot.is_none() {
        if let Some(ini) = settings.doc_root.clone().filter(|d| !d.is_empty()) {
            docroot = env.put(b"DOCUMENT_ROOT", Some(ini));
        }
    }
    let mut script_name = orig.script_name.clone();
    // Apache's mod_fastcgi (not mod_proxy_fcgi): SCRIPT_FILENAME names the
    // PHP binary, PATH_TRANSLATED the script, REDIRECT_URL its URI.
    let redirect_url = env.get(b"REDIRECT_URL");
    let mut redirected = false;
    if let (false, Some(translated), Some(url)) = (apache, &orig.path_translated, &redirect_url) {
        if *translated != script {
            script = translated.clone();
            script_name = Some(url.clone());
            redirected = true;
        }
    }
    let needs_walk = !script.is_empty() && (script.ends_with(b"/") || !files.exists(&script));
    if needs_walk {
        let walk = Walk {
            files,
            docroot,
            orig: &orig,
            apache,
            decode_path_info: settings.decode_apache_path_info,
        };
        return walk.run(env, script, script_name);
    }
    if orig.filename.as_ref() != Some(&script) {
        env.keep_orig(b"ORIG_SCRIPT_FILENAME", &orig.filename);
        env.put(b"SCRIPT_FILENAME", Some(script.clone()));
    }
    if !apache && redirect_url.is_some() {
        if orig.path_info.is_some() {
            env.keep_orig(b"ORIG_PATH_INFO", &orig.path_info);
            env.put(b"PATH_INFO", None);
        }
        if orig.path_translated.is_some() {
            env.keep_orig(b"ORIG_PATH_TRANSLATED", &orig.path_translated);
            env.put(b"PATH_TRANSLATED", None);
        }
    }
    let request_uri = if redirected {
        env.keep_orig(b"ORIG_SCRIPT_NAME", &orig.script_name);
        env.put(b"SCRIPT_NAME", script_name)
    } else {
        script_name
    };
    (Some(script), request_uri)
}

/// Walking a path that is not a file back to the script it names.
struct Walk<'a> {
    files: &'a dyn Files,
    docroot: Option<Bytes>,
    orig: &'a Originals,
    apache: bool,
    /// [`CgiSettings::decode_apache_path_info`].
    decode_path_info: bool,
}

impl Walk<'_> {
    fn run(
        &self,
        env: &mut Env,
        script: Bytes,
        mut script_name: Option<Bytes>,
    ) -> (Option<Bytes>, Option<Bytes>) {
        let mut request_uri = None;
        let found = self.find_base(&script);
        let result = match found {
            Some(base) => {
                request_uri = self.split(env, &script, &base, &mut script_name);
                Some(base)
            }
            None => {
                env.keep_orig(b"ORIG_SCRIPT_FILENAME", &self.orig.filename);
                env.put(b"SCRIPT_FILENAME", None);
                None
            }
        };
        if request_uri.is_none() {
            request_uri = if self.orig.script_name.is_none() || self.orig.script_name != script_name
            {
                env.keep_orig(b"ORIG_SCRIPT_NAME", &self.orig.script_name);
                env.put(b"SCRIPT_NAME", script_name)
            } else {
                self.orig.script_name.clone()
            };
        }
        (result, request_uri)
    }

    /// The longest leading part of `script`, cut at a slash, that is a file.
    fn find_base(&self, script: &Bytes) -> Option<Bytes> {
        let mut end = script.len();
        loop {
            let part = &script[..end];
            end = part
                .iter()
                .rposition(|&b| b == b'/')
                .or_else(|| part.iter().rposition(|&b| b == b'\\'))?;
            if self.files.is_file(&script[..end]) {
                return Some(script.slice(..end));
            }
        }
    }

    /// The base script was found: sets PATH_INFO, SCRIPT_NAME,
    /// SCRIPT_FILENAME and PATH_TRANSLATED. Returns the request URI if set.
    fn split(
        &self,
        env: &mut Env,
        script: &Bytes,
        base: &Bytes,
        script_name: &mut Option<Bytes>,
    ) -> Option<Bytes> {
        let stripped = script.len() - base.len();
        let current_info = env.get(b"PATH_INFO");
        let mut request_uri = None;
        let path_info = if self.apache {
            let tail = script.slice(base.len()..);
            let changed = stripped != 0 && self.orig.path_info.as_ref() != Some(&tail);
            changed.then_some(tail)
        } else {
            current_info
                .as_ref()
                .filter(|info| info.len() > stripped)
                .map(|info| info.slice(info.len() - stripped..))
        };
        let mut info_now = current_info.clone();
        if let Some(mut path_info) = path_info {
            if let Some(orig_info) = &self.orig.path_info {
                env.put(b"ORIG_PATH_INFO", Some(orig_info.clone()));
                // SCRIPT_NAME becomes PATH_INFO up to where the new path
                // info starts (under Apache the new path info comes from
                // the file path, so all of PATH_INFO, as php-fpm does).
                let info = current_info.clone().unwrap_or_default();
                let name = match self.apache {
                    true => info,
                    false => info.slice(..info.len() - path_info.len()),
                };
                request_uri = if self.orig.script_name.as_ref() != Some(&name) {
                    env.keep_orig(b"ORIG_SCRIPT_NAME", &self.orig.script_name);
                    env.put(b"SCRIPT_NAME", Some(name))
                } else {
                    self.orig.script_name.clone()
                };
            } else if self.apache {
                request_uri = self.trim_script_name(env, script_name, &path_info, stripped);
                if self.decode_path_info && script_name.is_some() && path_info.contains(&b'%') {
                    path_info = Bytes::from(raw_url_decode(&path_info));
                }
            }
            info_now = env.put(b"PATH_INFO", Some(path_info));
        }
        if self.orig.filename.as_ref() != Some(base) {
            env.keep_orig(b"ORIG_SCRIPT_FILENAME", &self.orig.filename);
            env.put(b"SCRIPT_FILENAME", Some(base.clone()));
        }
        self.set_path_translated(env, base, script_name.as_ref(), info_now);
        request_uri
    }

    /// mod_proxy_fcgi puts the path info at the end of SCRIPT_NAME too
    /// (raw or URL-decoded): cut it off there.
    fn trim_script_name(
        &self,
        env: &mut Env,
        script_name: &mut Option<Bytes>,
        path_info: &Bytes,
        stripped: usize,
    ) -> Option<Bytes> {
        let name = script_name.clone()?;
        let decoded = path_info.contains(&b'%').then(|| raw_url_decode(path_info));
        let cut = [Some(path_info.to_vec()), decoded]
            .into_iter()
            .flatten()
            .enumerate()
            .find_map(|(i, info)| {
                let len = if i == 0 { stripped } else { info.len() };
                (name.len() > len && name[name.len() - len..] == info[..]).then(|| name.len() - len)
            })?;
        env.keep_orig(b"ORIG_SCRIPT_NAME", &self.orig.script_name);
        *script_name = Some(name.slice(..cut));
        env.put(b"SCRIPT_NAME", script_name.clone())
    }

    /// PATH_TRANSLATED: DOCUMENT_ROOT + PATH_INFO, or, without a document
    /// root, the script minus SCRIPT_NAME plus PATH_INFO.
    fn set_path_translated(
        &self,
        env: &mut Env,
        base: &Bytes,
        script_name: Option<&Bytes>,
        info: Option<Bytes>,
    ) {
        let info = info.unwrap_or_default();
        let prefix = if let Some(root) = &self.docroot {
            root.strip_suffix(b"/").unwrap_or(root).to_vec()
        } else if let Some(name) = script_name.filter(|n| contains(base, n)) {
            base[..base.len() - name.len()].to_vec()
        } else {
            return;
        };
        let mut translated = prefix;
        translated.extend_from_slice(&info);
        env.keep_orig(b"ORIG_PATH_TRANSLATED", &self.orig.path_translated);
        env.put(b"PATH_TRANSLATED", Some(Bytes::from(translated)));
    }
}

/// `cgi.fix_pathinfo=0`: PATH_INFO (or SCRIPT_NAME) is the URI, and
/// PATH_TRANSLATED the script unless `cgi.discard_path`.
fn without_fix_pathinfo(
    env: &Env,
    settings: &CgiSettings,
    script: Bytes,
) -> (Option<Bytes>, Option<Bytes>) {
    let request_uri = env.get(b"PATH_INFO").or_else(|| env.get(b"SCRIPT_NAME"));
    let script = match env.get(b"PATH_TRANSLATED") {
        Some(translated) if !settings.discard_path => translated,
        _ => script,
    };
    (Some(script), request_uri)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// `%XX` decoding without `+` to space, as for a path.
fn raw_url_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(hi), Some(lo)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// False for a path with a `..` segment, which php-fpm refuses to run.
fn is_valid_path(path: &[u8]) -> bool {
    !path
        .split(|&b| b == b'/' || b == b'\\')
        .any(|segment| segment == b"..")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file system holding exactly these regular files (and their dirs).
    struct FakeFiles(&'static [&'static str]);

    impl Files for FakeFiles {
        fn exists(&self, path: &[u8]) -> bool {
            let path = std::str::from_utf8(path).unwrap().trim_end_matches('/');
            self.0
                .iter()
                .any(|f| *f == path || f.starts_with(&format!("{path}/")))
        }

        fn is_file(&self, path: &[u8]) -> bool {
            self.0.iter().any(|f| f.as_bytes() == path)
        }
    }

    const FILES: FakeFiles = FakeFiles(&["/srv/www/index.php", "/srv/www/sub/info.php"]);

    fn fix() -> CgiSettings {
        CgiSettings {
            fix_pathinfo: true,
            ..CgiSettings::default()
        }
    }

    fn run(pairs: &[(&str, &str)], settings: &CgiSettings) -> (Derived, Vec<(String, String)>) {
        let params = Params::from_text(pairs);
        let derived = derive(&params, settings, &FILES);
        let mut env: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        for (name, value) in &derived.edits {
            let name = String::from_utf8_lossy(name).into_owned();
            let at = env.iter().position(|(n, _)| *n == name);
            match (at, value) {
                (Some(i), Some(v)) => env[i].1 = String::from_utf8_lossy(v).into_owned(),
                (Some(i), None) => {
                    env.remove(i);
                }
                (None, Some(v)) => env.push((name, String::from_utf8_lossy(v).into_owned())),
                (None, None) => {}
            }
        }
        (derived, env)
    }

    fn text(b: &Option<Bytes>) -> Option<&str> {
        b.as_deref().map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn a_script_that_exists_changes_nothing() {
        let pairs = [
            ("SCRIPT_FILENAME", "/srv/www/index.php"),
            ("SCRIPT_NAME", "/index.php"),
            ("DOCUMENT_ROOT", "/srv/www"),
        ];
        let (derived, _) = run(&pairs, &fix());
        assert!(derived.edits.is_empty());
        assert_eq!(text(&derived.script), Some("/srv/www/index.php"));
        assert_eq!(text(&derived.request_uri), Some("/index.php"));
    }

    #[test]
    fn nginx_split_path_info_with_an_existing_script() {
        // fastcgi_split_path_info: SCRIPT_FILENAME is the file, PATH_INFO separate.
        let pairs = [
            ("SCRIPT_FILENAME", "/srv/www/index.php"),
            ("PATH_INFO", "/a/b"),
            ("SCRIPT_NAME", "/index.php"),
            ("DOCUMENT_ROOT", "/srv/www"),
        ];
        let (derived, env) = run(&pairs, &fix());
        assert!(derived.edits.is_empty(), "{env:?}");
        assert_eq!(text(&derived.request_uri), Some("/index.php"));
    }

    #[test]
    fn a_path_past_the_script_is_walked_back() {
        // No split in the web server: SCRIPT_FILENAME carries the path info.
        let pairs = [
            ("SCRIPT_FILENAME", "/srv/www/index.php/a/b"),
            ("SCRIPT_NAME", "/index.php/a/b"),
            ("PATH_INFO", "/a/b"),
            ("DOCUMENT_ROOT", "/srv/www"),
        ];
        let (derived, env) = run(&pairs, &fix());
        assert_eq!(text(&derived.script), Some("/srv/www/index.php"));
        let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("SCRIPT_FILENAME"), Some("/srv/www/index.php"));
        assert_eq!(get("ORIG_SCRIPT_FILENAME"), Some("/srv/www/index.php/a/b"));
        assert_eq!(get("PATH_TRANSLATED"), Some("/srv/www/a/b"));
        assert_eq!(get("PATH_INFO"), Some("/a/b"));
        assert_eq!(text(&derived.request_uri), Some("/index.php/a/b"));
    }

    #[test]
    fn no_file_anywhere_on_the_path_is_primary_script_unknown() {
        let pairs = [
            ("SCRIPT_FILENAME", "/srv/www/missing.php"),
            ("SCRIPT_NAME", "/missing.php"),
        ];
        let (derived, env) = run(&pairs, &fix());
        assert_eq!(derived.script, None);
        assert!(!env.iter().any(|(k, _)| k == "SCRIPT_FILENAME"));
        assert!(env.iter().any(|(k, _)| k == "ORIG_SCRIPT_FILENAME"));
    }

    #[test]
    fn apache_proxy_prefix_is_stripped_and_path_info_recovered() {
        let pairs = [
            (
                "SCRIPT_FILENAME",
                "proxy:fcgi://127.0.0.1:9000/srv/www/sub/info.php/x/y?q=1",
            ),
            ("SCRIPT_NAME", "/sub/info.php/x/y"),
            ("DOCUMENT_ROOT", "/srv/www"),
        ];
        let (derived, env) = run(&pairs, &fix());
        let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(text(&derived.script), Some("/srv/www/sub/info.php"));
        assert_eq!(get("PATH_INFO"), Some("/x/y"));
        assert_eq!(get("SCRIPT_NAME"), Some("/sub/info.php"));
        assert_eq!(get("ORIG_SCRIPT_NAME"), Some("/sub/info.php/x/y"));
        assert_eq!(
            get("ORIG_SCRIPT_FILENAME"),
            Some("/srv/www/sub/info.php/x/y")
        );
        assert_eq!(text(&derived.request_uri), Some("/sub/info.php"));
    }

    #[test]
    fn php_84_decodes_the_path_info_it_recovers_from_apache() {
        let pairs = [
            (
                "SCRIPT_FILENAME",
                "proxy:fcgi://127.0.0.1:9000/srv/www/sub/info.php/1%202",
            ),
            ("SCRIPT_NAME", "/sub/info.php/1 2"),
            ("DOCUMENT_ROOT", "/srv/www"),
        ];
        for (decode, info) in [(false, "/1%202"), (true, "/1 2")] {
            let settings = CgiSettings {
                decode_apache_path_info: decode,
                ..fix()
            };
            let (_, env) = run(&pairs, &settings);
            let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            assert_eq!(get("PATH_INFO").as_deref(), Some(info));
            assert_eq!(get("SCRIPT_NAME").as_deref(), Some("/sub/info.php"));
        }
    }

    #[test]
    fn without_fix_pathinfo_path_info_is_the_uri() {
        let pairs = [
            ("SCRIPT_FILENAME", "/srv/www/index.php"),
            ("SCRIPT_NAME", "/index.php"),
            ("PATH_INFO", "/a"),
        ];
        let (derived, _) = run(&pairs, &CgiSettings::default());
        assert!(derived.edits.is_empty());
        assert_eq!(text(&derived.request_uri), Some("/a"));
        assert_eq!(text(&derived.script), Some("/srv/www/index.php"));
    }

    #[test]
    fn dot_dot_segments_are_refused() {
        assert!(!is_valid_path(b"/srv/www/../etc/passwd"));
        assert!(!is_valid_path(b".."));
        assert!(is_valid_path(b"/srv/www/a..b.php"));
        assert!(is_valid_path(b"/srv/www/x.php"));
    }

    #[test]
    fn raw_url_decoding() {
        assert_eq!(raw_url_decode(b"/a%20b+c%zz%4"), b"/a b+c%zz%4");
    }
}
