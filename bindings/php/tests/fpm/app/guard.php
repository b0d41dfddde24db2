<?php

// A plain PHP endpoint protected by Keyward\Guard. Under the preload configuration the
// Keyward classes are already loaded: no autoloader, no FFI::cdef per request.
//   ?scopes=a,b    scopes required    ?sleep_ms=n    hold the worker after the verify

declare(strict_types=1);

header('X-Worker-Pid: ' . getmypid());
$scopes = array_values(array_filter(explode(',', (string) ($_GET['scopes'] ?? ''))));
$verdict = Keyward\Guard::require($scopes);
// What the check left for later keyward checks of this request (Guard::ACCEPTED), by type.
$accepted = array_map('get_debug_type', $GLOBALS[Keyward\Guard::ACCEPTED] ?? []);
if (isset($_GET['sleep_ms'])) {
    usleep(1000 * (int) $_GET['sleep_ms']);
}
header('Content-Type: application/json');
// ?then=a,b: a second Guard::require() in the same request (it reuses the first's verdict).
$then = isset($_GET['then']) ? Keyward\Guard::require(array_values(array_filter(explode(',', (string) $_GET['then'])))) : null;
echo json_encode(['ok' => true, 'owner' => $verdict->owner(), 'key_id' => $verdict->keyId(), 'pid' => getmypid(),
    // Whether this worker's later Guard checks go through the keyward_native extension in one call.
    'guard_native' => function_exists('keyward_native_guard_bound') && keyward_native_guard_bound(),
    'same_verdict' => $then === null || $then === $verdict, 'accepted' => $accepted]), "\n";
