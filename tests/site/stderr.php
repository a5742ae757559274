<?php
// Writes a line to the FastCGI error stream (error_log), so tests can check how worker output is
// logged; answers with its pid.
error_log("marker " . ($_GET["tag"] ?? ""));
header('Content-Type: text/plain');
echo getmypid(), "\n";
