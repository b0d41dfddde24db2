<?php
// The SQLite variants, as Laravel Sanctum does them: SHA-256 (hex) of the bearer token looked
// up in personal_access_tokens.token (UNIQUE index), abilities checked; with $update the row's
// last_used_at and uses are written on every request (Sanctum's default). The PDO connection
// is persistent (one per FPM worker): SQLite's best case (Laravel reconnects per request).
// WAL journal (set when the file was made) with synchronous=NORMAL: no fsync per commit.

function sanctum_authorized(bool $update): bool
{
    $auth = $_SERVER['HTTP_AUTHORIZATION'] ?? '';
    if (!str_starts_with($auth, 'Bearer ')) {
        return false;
    }
    $db = new PDO('sqlite:' . getenv('KW_BENCH_SQLITE'), null, null, [
        PDO::ATTR_PERSISTENT => true,
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_TIMEOUT => 5, // busy timeout: 4 workers write the same file
    ]);
    $find = $db->prepare('SELECT id, abilities, expires_at FROM personal_access_tokens WHERE token = ?');
    $find->execute([hash('sha256', substr($auth, 7))]);
    $row = $find->fetch(PDO::FETCH_NUM);
    $find->closeCursor(); // else the UPDATE upgrades a stale read transaction: SQLITE_BUSY at once
    $now = gmdate('Y-m-d H:i:s');
    if ($row === false || ($row[2] !== null && $row[2] <= $now) || !in_array('read', json_decode($row[1], true), true)) {
        return false;
    }
    if ($update) {
        $db->exec('PRAGMA synchronous = NORMAL'); // per connection; as the other hosts set it
        $db->prepare('UPDATE personal_access_tokens SET last_used_at = ?, uses = uses + 1 WHERE id = ?')->execute([$now, $row[0]]);
    }
    return true;
}

function sanctum_endpoint(bool $update): void
{
    header('Content-Type: application/json');
    if (!sanctum_authorized($update)) {
        http_response_code(401);
        echo '{"ok":false}';
        return;
    }
    echo '{"ok":true}';
}
