<?php

// How this worker runs keyward: where the library came from, the FFI restriction, preload
// statistics, the worker's persistent store handle (constant across its requests) and whether
// it verifies through the keyward_native extension.

declare(strict_types=1);

$store = Keyward\Store::persistent((string) getenv('KEYWARD_STORE'));
// First: the library is taken when a request first needs it (with the extension, a verify may not).
$indexedKeys = $store->stats()->indexedKeys;
$status = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
header('Content-Type: application/json');
echo json_encode([
    'pid' => getmypid(),
    'source' => Keyward\Library::source(),
    'ffi_enable' => ini_get('ffi.enable'),
    'preloaded_classes' => is_array($status) ? ($status['preload_statistics']['classes'] ?? []) : [],
    'handle' => $store->handle(),
    'indexed_keys' => $indexedKeys,
    // Whether this store verifies through the keyward_native extension (0: FFI only).
    'extension_verify' => (new ReflectionProperty(Keyward\Store::class, 'extensionVerify'))->getValue($store),
]), "\n";
