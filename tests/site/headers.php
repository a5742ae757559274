<?php
// Exercises response headers: a custom status line, several cookies, a redirect.
switch ($_GET['case'] ?? '') {
    case 'status':
        header('Status: 403 Login failed');
        echo "denied\n";
        break;
    case 'cookies':
        setcookie('first', 'one');
        setcookie('second', 'two');
        echo "two cookies\n";
        break;
    case 'redirect':
        header('Location: https://example.test/elsewhere');
        break;
    case 'created':
        http_response_code(201);
        header('Location: /items/7');
        echo "created\n";
        break;
    default:
        echo "no case\n";
}
