<?php

// A plain PHP endpoint protected by Keyward\Guard. Under the preload configuration the
// Keyward classes are already loaded: no autoloader, no FFI::cdef per request.
//   ?scopes=a,b    scopes required    ?sleep_ms=n    hold the worker after the verify

declare(strict_types=1);

header('X-Worker-Pid: ' . getmypid());
$scopes = array_values(array_filter(explode(',', (string) ($_GET['scopes'] ?? ''))));
$verdict = Keyward\Guard::require($scopes);
if (isset($_GET['sleep_ms'])) {
    usleep(1000 * (int) $_GET['sleep_ms']);
}
header('Content-Type: application/json');
echo json_encode(['ok' => true, 'owner' => $verdict->owner(), 'key_id' => $verdict->keyId(), 'pid' => getmypid()]), "\n";
