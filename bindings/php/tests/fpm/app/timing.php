<?php

// Measures what a request pays to get the worker's store and verify one key, first thing in
// the request (so the library lookup, FFI::scope() and the ABI check of the request are in):
//   ?mode=key      Store::persistent() + verify($key, ['read'])   (key from X-Api-Key)
//   ?mode=server   Store::persistent() + verifyServer($_SERVER, ['read'])
// "cold" is true when this worker had no persistent store yet (its first request). The
// breakdown: open_ns (Store::persistent, including the request's first Library::ffi()),
// verify_ns (the request's first verify), second_verify_ns (a second verify in the request).

declare(strict_types=1);

$cold = true;
foreach (getenv() as $name => $_) {
    if (str_starts_with((string) $name, 'KEYWARD_PHP_STORE_')) {
        $cold = false;
    }
}
$path = (string) getenv('KEYWARD_STORE');
$key = (string) ($_SERVER['HTTP_X_API_KEY'] ?? '');
$server = ($_GET['mode'] ?? 'key') === 'server';

$t0 = hrtime(true);
$store = Keyward\Store::persistent($path);
$t1 = hrtime(true);
$verdict = $server ? $store->verifyServer($_SERVER, ['read']) : $store->verify($key, ['read']);
$t2 = hrtime(true);
$again = $server ? $store->verifyServer($_SERVER, ['read']) : $store->verify($key, ['read']);
$t3 = hrtime(true);

header('Content-Type: application/json');
echo json_encode(['pid' => getmypid(), 'ns' => $t2 - $t0, 'open_ns' => $t1 - $t0, 'verify_ns' => $t2 - $t1,
    'second_verify_ns' => $t3 - $t2, 'cold' => $cold, 'code' => $verdict->code]), "\n";
