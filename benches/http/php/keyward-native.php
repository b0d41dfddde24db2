<?php
// The keyward endpoint with the keyward_native experiment (benches/php-ext; run.sh with
// KW_BENCH_PHP=native uses this file as keyward.php): Keyward\Guard::require(['read'])'s
// steps, the verify through the extension instead of FFI. The store is Guard's (the worker's
// persistent store from KEYWARD_STORE); the same counting of every use.
$store = Keyward\Guard::store();
$status = keyward_native_verify_server($store->handle(), $_SERVER, ['read'], 0, $raw);
if ($status === 0) {
    [, $reason, $http, $found] = unpack('V3', $raw);
    [$code, $message] = Keyward\Verdict::REASONS[$reason];
    $verdict = new Keyward\Verdict($reason === 0, $http, $code, $message, $reason, null, null,
        $found === 0 ? null : substr($raw, 0, 272));
} else {
    $verdict = Keyward\Verdict::credentialProblem(Keyward\Library::ffi(), $status);
}
if (!$verdict->valid) {
    Keyward\Guard::deny($verdict);
    exit(0);
}
Keyward\Guard::remember(Keyward\Guard::accepted($store, $verdict, ['read'], []));
header('Content-Type: application/json');
echo '{"ok":true}';
