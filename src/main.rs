//! The `tfpm` binary: parses the command line and runs the daemon.

use clap::Parser;
use tfpm::exit_code;

fn main() {
    let cli = match tfpm::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => tfpm::cli::usage_error(e),
    };
    // Read (and removed from the environment) before any thread starts.
    let worker = tfpm::process::worker::WorkerSpec::from_cli(cli.worker_spec.as_deref());
    let log = worker
        .as_ref()
        .and_then(|w| w.as_ref().ok())
        .map(|w| tfpm::cli::InheritedLog {
            stderr: w.take_log(),
            to_file: w.log_file,
        });
    tfpm::cli::init_logging(&cli, log);
    // php-fpm's `daemonize`, also before any thread starts.
    if worker.is_none() && tfpm::cli::wants_background(&cli) {
        match tfpm::sys::os::daemonize() {
            Ok(pipe) => {
                tfpm::process::master::report_ready_to(pipe);
                if let Err(e) = tfpm::process::logfile::stderr_to_main() {
                    tracing::warn!("cannot point stderr at the log: {e}");
                }
            }
            Err(e) => {
                eprintln!("tfpm: cannot go into the background: {e}");
                std::process::exit(exit_code::OS_ERROR);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tfpm-io")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tfpm: cannot start the I/O runtime: {e}");
            std::process::exit(exit_code::OS_ERROR);
        }
    };
    let code = runtime.block_on(tfpm::cli::run(cli, worker));
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}
