<?php
// Front controller: answers every path that matches no file.
header('Content-Type: text/plain');
echo "front controller: ", parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH), "\n";
