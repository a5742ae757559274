<?php
// The smallest dynamic page: measures the cost of the request path, not of PHP.
echo "Hello, world!\n";
