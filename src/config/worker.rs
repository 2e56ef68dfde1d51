//! tfpm's own pool directives for worker mode: `worker` (the script),
//! `worker.num`, `worker.max_requests`, `worker.max_consecutive_failures`,
//! `worker.match`, `worker.watch` and `worker.env[NAME]`. php-fpm knows none of them; a
//! pool without `worker` runs as php-fpm's does.

/// A pool's worker mode settings, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerDirectives {
    /// `worker`: the script each worker thread boots and loops in.
    pub script: Option<String>,
    /// `worker.num`: its threads (0: pm.max_children).
    pub num: i32,
    /// `worker.max_requests`: requests per boot (0: no limit).
    pub max_requests: i32,
    /// `worker.max_consecutive_failures`: failed boots in a row before the
    /// pool refuses to start, or later its requests get a 503 (-1: never).
    /// FrankenPHP's default, 6.
    pub max_consecutive_failures: i32,
    /// `worker.match`: a URI prefix routed to the script as well.
    pub uri_prefix: Option<String>,
    /// `worker.env[NAME]`: boot-only environment.
    pub env: Vec<(String, String)>,
    /// `worker.watch`: a directory whose code files restart the script
    /// when they change (development).
    pub watch: Option<String>,
}

impl Default for WorkerDirectives {
    fn default() -> Self {
        WorkerDirectives {
            script: None,
            num: 0,
            max_requests: 0,
            max_consecutive_failures: 6,
            uri_prefix: None,
            env: Vec::new(),
            watch: None,
        }
    }
}

/// Whether `key` is one of these directives (any case, as php-fpm's).
pub fn is_worker_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "worker" || key.starts_with("worker.")
}

impl WorkerDirectives {
    /// Applies `key = value`; Err names what is wrong with it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let number = |min: i32| -> Result<i32, String> {
            let n: i32 = value
                .trim()
                .parse()
                .map_err(|_| format!("'{value}' is not a number"))?;
            (n >= min)
                .then_some(n)
                .ok_or(format!("'{value}' is less than {min}"))
        };
        let text = || Some(value.to_string()).filter(|v| !v.is_empty());
        match key.to_ascii_lowercase().as_str() {
            "worker" => self.script = text(),
            "worker.num" => self.num = number(0)?,
            "worker.max_requests" => self.max_requests = number(0)?,
            "worker.max_consecutive_failures" => self.max_consecutive_failures = number(-1)?,
            "worker.match" => self.uri_prefix = text(),
            "worker.watch" => self.watch = text(),
            _ => return Err(format!("unknown entry '{key}'")),
        }
        Ok(())
    }

    /// Adds `worker.env[name] = value`; the first declaration wins, as
    /// with `env[...]`.
    pub fn add_env(&mut self, name: &str, value: &str) {
        if !self.env.iter().any(|(k, _)| k == name) {
            self.env.push((name.to_string(), value.to_string()));
        }
    }

    /// php-fpm-style check: the script must be an absolute path to a file.
    pub fn check(&self, pool: &str) -> Result<(), String> {
        let Some(script) = &self.script else {
            return match self.uri_prefix.is_some() || self.num > 0 {
                true => Err(format!(
                    "[pool {pool}] worker.* is set but 'worker' (the script) is not"
                )),
                false => Ok(()),
            };
        };
        let path = std::path::Path::new(script);
        if !path.is_absolute() {
            return Err(format!(
                "[pool {pool}] worker '{script}' must be an absolute path"
            ));
        }
        if !path.is_file() {
            return Err(format!(
                "[pool {pool}] worker script '{script}' is not a file"
            ));
        }
        match &self.watch {
            Some(dir) if !std::path::Path::new(dir).is_dir() => Err(format!(
                "[pool {pool}] worker.watch '{dir}' is not a directory"
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_directive_sets_its_field_and_bad_numbers_are_refused() {
        let mut w = WorkerDirectives::default();
        w.set("worker", "/srv/app/index.php").unwrap();
        w.set("Worker.Num", "4").unwrap();
        w.set("worker.max_requests", "500").unwrap();
        w.set("worker.max_consecutive_failures", "-1").unwrap();
        w.set("worker.match", "/api/").unwrap();
        assert_eq!(w.script.as_deref(), Some("/srv/app/index.php"));
        assert_eq!(
            (w.num, w.max_requests, w.max_consecutive_failures),
            (4, 500, -1)
        );
        assert_eq!(w.uri_prefix.as_deref(), Some("/api/"));
        assert!(w.set("worker.num", "-1").is_err());
        assert!(w.set("worker.num", "many").is_err());
        assert!(w.set("worker.threads", "2").is_err());
        assert!(is_worker_key("WORKER.num") && !is_worker_key("workers"));
    }

    #[test]
    fn the_script_must_be_an_absolute_existing_file() {
        let mut w = WorkerDirectives::default();
        assert!(w.check("www").is_ok());
        w.num = 2;
        assert!(w
            .check("www")
            .unwrap_err()
            .contains("'worker' (the script) is not"));
        w.script = Some("index.php".into());
        assert!(w.check("www").unwrap_err().contains("absolute"));
        w.script = Some("/nonexistent/index.php".into());
        assert!(w.check("www").unwrap_err().contains("is not a file"));
        w.script = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").into());
        assert!(w.check("www").is_ok());
        w.set("worker.watch", "/nonexistent").unwrap();
        assert!(w.check("www").unwrap_err().contains("not a directory"));
        w.set("worker.watch", env!("CARGO_MANIFEST_DIR")).unwrap();
        assert!(w.check("www").is_ok());
    }
}
