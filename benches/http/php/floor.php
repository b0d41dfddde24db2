<?php
// The floor: the bearer token looked up as is in an array of every key and its scopes
// (floor_keys.php, written by run.sh from the key file). opcache keeps that file's literal
// array in shared memory, so a request only looks it up. No hashing, no counting, no store:
// the cheapest check of a key a worker can make, to show what any lookup of a random key
// among N costs this host.
$keys = require __DIR__ . '/floor_keys.php';
header('Content-Type: application/json');
$auth = $_SERVER['HTTP_AUTHORIZATION'] ?? '';
$scopes = str_starts_with($auth, 'Bearer ') ? ($keys[substr($auth, 7)] ?? null) : null;
if ($scopes === null || !in_array('read', $scopes, true)) {
    http_response_code(401);
    echo '{"ok":false}';
    return;
}
echo '{"ok":true}';
