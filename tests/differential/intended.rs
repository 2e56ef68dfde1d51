//! The differences between php-fpm and tfpm that are intended, by case name,
//! each with the reason. fcgi-tests/DIFFERENTIAL.md lists the same ones.
//!
//! Only differences that are so by design belong here. A difference that is a
//! tfpm bug or a missing feature stays out, so that the harness keeps failing
//! until tfpm is fixed. An entry whose case no longer differs fails the run
//! too, so the list cannot go stale.

/// (case name, why tfpm answers differently on purpose).
pub const INTENDED: &[(&str, &str)] = &[
    (
        "PHP_BINARY",
        "PHP_BINARY names the executable that serves the request: tfpm's binary, \
         not php-fpm's. It is a file in both cases.",
    ),
    ("chunked body unbuffered: no CONTENT_LENGTH", CHUNKED),
    ("chunked octet-stream unbuffered", CHUNKED),
    ("nopost chunked unbuffered", CHUNKED),
];

/// Why a body without CONTENT_LENGTH differs.
const CHUNKED: &str = "A chunked request body that nginx forwards unbuffered comes with no \
     CONTENT_LENGTH. php-fpm then takes the body as empty: $_POST and php://input \
     are empty and the upload is lost. tfpm reads the body to its end (the empty \
     STDIN record), so the script gets what the client sent.";

/// The reason given for `case`, if its difference is intended.
pub fn reason(case: &str) -> Option<&'static str> {
    INTENDED
        .iter()
        .find(|(name, _)| *name == case)
        .map(|(_, why)| *why)
}
