<?php

// How this worker runs keyward: where the library came from, the FFI restriction, preload
// statistics, and the worker's persistent store handle (constant across its requests).

declare(strict_types=1);

$store = Keyward\Store::persistent((string) getenv('KEYWARD_STORE'));
$status = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
header('Content-Type: application/json');
echo json_encode([
    'pid' => getmypid(),
    'source' => Keyward\Library::source(),
    'ffi_enable' => ini_get('ffi.enable'),
    'preloaded_classes' => is_array($status) ? ($status['preload_statistics']['classes'] ?? []) : [],
    'handle' => $store->handle(),
    'indexed_keys' => $store->stats()->indexedKeys,
    // Whether this store verifies through the keyward_native extension (0: FFI only).
    'extension_verify' => (new ReflectionProperty(Keyward\Store::class, 'extensionVerify'))->getValue($store),
]), "\n";
