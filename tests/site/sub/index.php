<?php
// A directory index script, for the differential test's index-resolution shapes.
require __DIR__ . '/../capture.php';
