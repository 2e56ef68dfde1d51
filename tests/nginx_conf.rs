//! The files in `nginx-conf/`, used exactly as they are: the site example
//! (port 80, root /var/www/example) with tfpm.conf (TCP 127.0.0.1:9000) or
//! tfpm-unix.conf (/run/tfpm/tfpm.sock), and Debian's own
//! snippets/fastcgi-php.conf. Their fixed ports and paths are made free by
//! running each case in a private network and mount namespace (`unshare`,
//! as root): there, /var/www/example is the test docroot and /run/tfpm an
//! empty tmpfs. nginx's conf directory links (never copies) each file where
//! Debian keeps it: conf.d/, snippets/, sites-enabled/.

use std::process::Command;

use fcgi_tests::{repo_root, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

/// Runs nginx and tfpm in a fresh namespace with `upstream_file` and
/// returns what curl saw, one `CODE BODY` line per URI.
fn serve_in_namespace(upstream_file: &str, listen: &str) -> String {
    let repo = repo_root();
    let conf = repo.join("nginx-conf");
    let docroot = repo.join("tests").join("docroot");
    let dir = tempfile::tempdir().expect("temp dir");
    let script = format!(
        r#"
set -eu
ip link set lo up
mount -t tmpfs tmpfs /run && mkdir -p /run/tfpm
mount -t tmpfs tmpfs /var/www && mkdir /var/www/example
mount --bind {docroot} /var/www/example
d={dir}
mkdir -p $d/conf.d $d/snippets $d/sites-enabled $d/tmp
ln -s {conf}/{upstream_file} $d/conf.d/{upstream_file}
ln -s {conf}/tfpm-php.conf $d/snippets/tfpm-php.conf
ln -s {conf}/site-example.conf $d/sites-enabled/site-example.conf
ln -s /etc/nginx/snippets/fastcgi-php.conf $d/snippets/fastcgi-php.conf
ln -s /etc/nginx/fastcgi.conf $d/fastcgi.conf
ln -s /etc/nginx/mime.types $d/mime.types
cat > $d/nginx.conf <<CONF
user root;
pid $d/nginx.pid;
error_log $d/error.log;
events {{ worker_connections 64; }}
http {{
    include mime.types;
    access_log off;
    client_body_temp_path $d/tmp/body;
    fastcgi_temp_path $d/tmp/fastcgi;
    proxy_temp_path $d/tmp/proxy;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    include conf.d/*.conf;
    include sites-enabled/*;
}}
CONF
{TFPM} --listen {listen} --threads 2 2>$d/tfpm.log &
nginx -c $d/nginx.conf
get() {{ curl -s -H 'Host: example.com' -o $d/body -w '%{{http_code}}' "http://127.0.0.1$1"; }}
for _ in $(seq 500); do [ "$(get /hello.php)" = 200 ] && break; done
for uri in /hello.php '/sapi.php/extra/path?k=v' /missing.php /.user.ini; do
  echo "$(get "$uri") $(tr '\n' ' ' < $d/body | head -c 300)"
done
nginx -c $d/nginx.conf -s stop
kill %1; wait
"#,
        docroot = docroot.display(),
        dir = dir.path().display(),
        conf = conf.display(),
    );
    let out = Command::new("unshare")
        .args(["--net", "--mount", "--fork", "bash", "-c", &script])
        .output()
        .expect("run unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}\n--- tfpm ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.path().join("tfpm.log")).unwrap_or_default()
    );
    stdout
}

fn check(lines: &str) {
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], "200 Hello, world! ");
    assert!(lines[1].starts_with("200 "), "{}", lines[1]);
    for field in [
        r#""path_info":"/extra/path""#,
        r#""script_filename":"/var/www/example/sapi.php""#,
        r#""script_name":"/sapi.php""#,
    ] {
        assert!(lines[1].contains(field), "{field} in {}", lines[1]);
    }
    assert!(lines[2].starts_with("404 "), "{}", lines[2]);
    assert!(lines[3].starts_with("403 "), "{}", lines[3]);
}

#[test]
fn the_site_example_over_tcp_with_tfpm_conf() {
    check(&serve_in_namespace("tfpm.conf", "127.0.0.1:9000"));
}

#[test]
fn the_site_example_over_a_unix_socket_with_tfpm_unix_conf() {
    check(&serve_in_namespace("tfpm-unix.conf", "/run/tfpm/tfpm.sock"));
}
