<?php
// Sessions with the files handler (session.save_path is a temp dir of the
// harness). ?op= picks the operation; the id itself is never printed (the
// harness masks it in Set-Cookie), only facts about it.
require __DIR__ . '/show.inc';

/** The marker file slow_count creates once it holds the session lock. */
function lock_marker(): string
{
    return ini_get('upload_tmp_dir') . '/locked-' . basename($_GET['lock'] ?? 'none');
}

/** Starts the session, counts this request in $_SESSION['n'] and prints the state. */
function count_request(): void
{
    session_start();
    $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
    show('n', $_SESSION['n']);
}

switch ($_GET['op'] ?? '') {
    case 'count':
        count_request();
        break;
    case 'slow_count':
        // Holds the session lock for 400 ms, and says so with the marker.
        session_start();
        touch(lock_marker());
        usleep(400000);
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        show('n', $_SESSION['n']);
        break;
    case 'count_when_locked':
        // Starts once slow_count holds the lock, so session_start() must wait for it.
        $deadline = microtime(true) + 5;
        while (!is_file(lock_marker()) && microtime(true) < $deadline) {
            usleep(5000);
        }
        @unlink(lock_marker());
        count_request();
        break;
    case 'state':
        session_start();
        show('id length', strlen(session_id()));
        show('status active', session_status() === PHP_SESSION_ACTIVE);
        show('$_SESSION', $_SESSION);
        $file = session_save_path() . '/sess_' . session_id();
        session_write_close();
        show('file written', is_file($file));
        break;
    case 'regenerate':
        session_start();
        $old = session_id();
        session_regenerate_id(true);
        show('new id', session_id() !== $old);
        show('old file removed', !is_file(session_save_path() . '/sess_' . $old));
        show('$_SESSION kept', $_SESSION);
        break;
    case 'destroy':
        session_start();
        show('destroyed', session_destroy());
        show('status', session_status());
        break;
    case 'read_and_close':
        session_start(['read_and_close' => true]);
        show('$_SESSION', $_SESSION);
        show('status', session_status());
        break;
    case 'strict':
        ini_set('session.use_strict_mode', '1');
        session_start();
        show('id from cookie kept', session_id() === ($_COOKIE['PHPSESSID'] ?? null));
        show('id length', strlen(session_id()));
        break;
    case 'limiter':
        session_cache_limiter($_GET['limiter'] ?? '');
        session_start();
        echo "limiter ", session_cache_limiter(), "\n";
        break;
    case 'params':
        session_name('DIFFSESS');
        session_set_cookie_params([
            'lifetime' => 0,
            'path' => '/app',
            'domain' => 'example.com',
            'secure' => true,
            'httponly' => true,
            'samesite' => 'Lax',
        ]);
        session_start();
        show('name', session_name());
        break;
    case 'after_output':
        echo "output first\n";
        show('session_start', @session_start());
        show('status', session_status());
        break;
}
