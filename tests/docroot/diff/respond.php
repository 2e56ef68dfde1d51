<?php
// Builds a response from the query, to compare how each daemon turns PHP's
// headers into FastCGI output:
//   code=N      http_response_code(N)
//   h[]=LINE    header(LINE); a leading "+" means header(LINE, false) (add, not replace)
//   hc=N        the status code argument of the last h[] header()
//   rm[]=NAME   header_remove(NAME); rm[]=* removes all
//   body=TEXT   echoed after the headers
//   show=1      the body also lists http_response_code() and headers_list()
if (isset($_GET['code'])) {
    http_response_code((int) $_GET['code']);
}
$lines = $_GET['h'] ?? [];
foreach ($lines as $i => $line) {
    $add = str_starts_with($line, '+');
    $code = ($i === array_key_last($lines) && isset($_GET['hc'])) ? (int) $_GET['hc'] : 0;
    header($add ? substr($line, 1) : $line, !$add, $code);
}
foreach ($_GET['rm'] ?? [] as $name) {
    $name === '*' ? header_remove() : header_remove($name);
}
if (!empty($_GET['show'])) {
    echo 'http_response_code(): ', var_export(http_response_code(), true), "\n";
    echo 'headers_list(): ', var_export(headers_list(), true), "\n";
}
echo $_GET['body'] ?? '';
