//! php-src's own `.phpt` tests, run over FastCGI against php-fpm from our
//! build and against tfpm (issue 15): the test format ([`parse`]), the
//! output comparison ([`expect`]), a test as requests ([`case`]), one run
//! against one server ([`run`]), the two-server comparison with warm and
//! shuffled threads ([`suite`]) and the list of tests that do not pass
//! ([`expected`]). The command is `scripts/phpt.sh`; `tests/phpt.rs` runs
//! the CI subset.

pub mod case;
pub mod expect;
pub mod expected;
pub mod parse;
pub mod run;
pub mod suite;
