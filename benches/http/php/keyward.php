<?php
// keyward the way README.md ("Use from PHP") protects a plain script: Keyward\Guard, the
// worker's persistent store from KEYWARD_STORE, classes and FFI scope preloaded by
// opcache.preload. A refused key gets 401/403 + JSON and the script exits.
$verdict = Keyward\Guard::require(['read']);
header('Content-Type: application/json');
echo '{"ok":true}';
