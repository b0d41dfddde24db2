<?php

/*
 * Verify throughput from PHP, next to what it is made of and what it replaces:
 *
 *   noop FFI call        kw_abi_version(): the price of crossing PHP FFI once
 *   kw_verify (raw FFI)  one FFI call to kw_verify, reusing the verdict struct
 *   kw_verify_key_ex (raw) the same with the seven-argument hot path and
 *                        KW_VERIFY_RATE_FIELDS (what Store::verify calls without cost, time or record)
 *   Store::verify()      the binding's verify: the call plus the Verdict object
 *   Store::verify(scope) the same with one required scope
 *   Guard::check         a request's verify as a plain PHP-FPM script makes it: the credential
 *                        headers of a $_SERVER-shaped array, one scope (through the
 *                        keyward_native extension when it is loaded: php -d extension=...)
 *   PDO-SQLite+SHA-256   what Laravel Sanctum / DRF API Key do: hash the key, one indexed
 *                        SELECT on a SQLite file (WAL), hash_equals, decode the scopes
 *
 * on the same N keys (verified round-robin). Prints calls/s and ns/call (median of 21
 * interleaved rounds, so that load from other processes hits every candidate alike).
 *
 *   KEYWARD_LIB=target/release/libkeyward.so php bindings/php/bench.php [--keys N] [--seconds S] [--json FILE]
 *
 * With --json the figures are also written to FILE. No assertions: figures only.
 */

declare(strict_types=1);

require __DIR__ . '/tests/autoload.php';

use Keyward\Library;
use Keyward\Store;

$options = getopt('', ['keys:', 'seconds:', 'json:']);
$keyCount = (int) ($options['keys'] ?? 1000);
$seconds = (float) ($options['seconds'] ?? 1.0);
if (!is_string(getenv('KEYWARD_LIB', true)) || getenv('KEYWARD_LIB', true) === '') {
    Library::$path = dirname(__DIR__, 2) . '/target/release/libkeyward.so';
}

$dir = sys_get_temp_dir() . '/keyward-bench-' . getmypid();
mkdir($dir, 0700);
register_shutdown_function(static function () use ($dir): void {
    foreach (glob("$dir/*") ?: [] as $file) {
        @unlink($file);
    }
    @rmdir($dir);
});

// --- the keys, in keyward and in SQLite ---------------------------------------------------
$store = Store::open("$dir/keys.redb", flushIntervalMs: 1000);
$pdo = new PDO("sqlite:$dir/tokens.sqlite", null, null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$pdo->exec('PRAGMA journal_mode = WAL');
$pdo->exec('PRAGMA synchronous = NORMAL');
$pdo->exec('CREATE TABLE personal_access_tokens (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE, abilities TEXT, expires_at INTEGER, last_used_at INTEGER, created_at INTEGER)');
$insert = $pdo->prepare('INSERT INTO personal_access_tokens (owner, name, token, abilities, created_at) VALUES (?, ?, ?, ?, ?)');
$keys = [];
$pdo->beginTransaction();
for ($i = 0; $i < $keyCount; $i++) {
    $key = $store->create("acct_$i", name: "key $i", scopes: ['read', 'write'], env: 'live')->key;
    $keys[] = $key;
    $insert->execute(["acct_$i", "key $i", hash('sha256', $key), json_encode(['read', 'write']), time()]);
}
$pdo->commit();
$store->flush();

/**
 * ns per call of each candidate: 21 rounds; in each round every candidate runs for
 * $seconds / 21 (in batches of 500 calls, checking the clock between batches), in turn, so
 * that load from other processes hits them alike; the figure is the median round.
 *
 * @param array<string, callable(int): void> $candidates
 * @return array<string, float>
 */
$measure = static function (array $candidates) use ($seconds): array {
    $rounds = 21;
    $samples = array_fill_keys(array_keys($candidates), []);
    for ($round = 0; $round < $rounds; $round++) {
        foreach ($candidates as $name => $fn) {
            $calls = 0;
            $start = hrtime(true);
            $deadline = $start + (int) ($seconds / $rounds * 1e9);
            do {
                for ($i = 0; $i < 500; $i++) {
                    $fn($calls + $i);
                }
                $calls += 500;
                $now = hrtime(true);
            } while ($now < $deadline);
            $samples[$name][] = ($now - $start) / $calls;
        }
    }
    $medians = [];
    foreach ($samples as $name => $ns) {
        sort($ns);
        $medians[$name] = $ns[intdiv($rounds, 2)];
    }
    return $medians;
};

$ffi = Library::ffi();
$n = count($keys);
$verdict = $ffi->new('kw_verdict');
$verdictPtr = FFI::addr($verdict);
$handle = $store->handle();
// A request's $_SERVER, as PHP-FPM fills it behind nginx, per key.
$servers = array_map(static fn (string $key): array => ['REQUEST_METHOD' => 'GET', 'REQUEST_URI' => '/keyward',
    'SERVER_PROTOCOL' => 'HTTP/1.1', 'HTTP_HOST' => '127.0.0.1', 'HTTP_ACCEPT' => '*/*', 'HTTP_X_API_KEY' => $key,
    'REMOTE_ADDR' => '127.0.0.1', 'REQUEST_TIME_FLOAT' => 1.5], $keys);
$select = $pdo->prepare('SELECT id, owner, token, abilities, expires_at FROM personal_access_tokens WHERE token = ?');

// Every candidate must accept every key before it is timed.
foreach ($keys as $key) {
    $ffi->kw_verify($handle, $key, strlen($key), null, 0, 0, 0, $verdictPtr, null, 0, null);
    if ($verdict->reason !== 0 || !$store->verify($key, ['read'])->valid) {
        fwrite(STDERR, "bench: keyward refused a key\n");
        exit(1);
    }
    $hash = hash('sha256', $key);
    $select->execute([$hash]);
    $row = $select->fetch(PDO::FETCH_ASSOC);
    if ($row === false || !hash_equals($row['token'], $hash)) {
        fwrite(STDERR, "bench: SQLite refused a key\n");
        exit(1);
    }
}

$results = $measure([
    'noop FFI call (kw_abi_version)' => static function (int $i) use ($ffi): void {
        $ffi->kw_abi_version();
    },
    'kw_verify (raw FFI call)' => static function (int $i) use ($ffi, $keys, $n, $handle, $verdictPtr): void {
        $key = $keys[$i % $n];
        $ffi->kw_verify($handle, $key, strlen($key), null, 0, 0, 0, $verdictPtr, null, 0, null);
    },
    'kw_verify_key_ex (raw FFI call)' => static function (int $i) use ($ffi, $keys, $n, $handle, $verdictPtr): void {
        $key = $keys[$i % $n];
        $ffi->kw_verify_key_ex($handle, $key, strlen($key), null, 0, Keyward\Abi::KW_VERIFY_RATE_FIELDS, $verdictPtr);
    },
    'Store::verify($key)' => static function (int $i) use ($store, $keys, $n): void {
        $store->verify($keys[$i % $n]);
    },
    "Store::verify(\$key, ['read'])" => static function (int $i) use ($store, $keys, $n): void {
        $store->verify($keys[$i % $n], ['read']);
    },
    'Store::verify + ->owner' => static function (int $i) use ($store, $keys, $n): void {
        $store->verify($keys[$i % $n])->owner();
    },
    "Guard::check(['read'], \$server)" => static function (int $i) use ($store, $servers, $n): void {
        Keyward\Guard::check(['read'], $store, $servers[$i % $n]);
    },
    'PDO-SQLite + SHA-256 lookup' => static function (int $i) use ($select, $keys, $n): void {
        $key = $keys[$i % $n];
        $hash = hash('sha256', $key);
        $select->execute([$hash]);
        $row = $select->fetch(PDO::FETCH_ASSOC);
        if ($row === false || !hash_equals($row['token'], $hash) || !in_array('read', json_decode($row['abilities'], true), true)) {
            throw new RuntimeException('refused');
        }
        $select->closeCursor();
    },
]);

printf("keyward %s, PHP %s (%s), %d keys, library %s, %s\n", Keyward\Keyward::version(), PHP_VERSION,
    ini_get('opcache.jit') && ini_get('opcache.enable_cli') ? 'JIT' : 'no JIT', $keyCount, Library::configuredPath(),
    extension_loaded('keyward_native') ? 'keyward_native loaded' : 'FFI only');
printf("%-34s %14s %12s\n", 'operation', 'calls/s', 'ns/call');
foreach ($results as $name => $ns) {
    printf("%-34s %14s %12.0f\n", $name, number_format(1e9 / $ns), $ns);
}
$store->close();

if (isset($options['json'])) {
    file_put_contents((string) $options['json'], json_encode([
        'php' => PHP_VERSION,
        'keys' => $keyCount,
        'library' => Library::configuredPath(),
        'ns_per_call' => array_map(static fn (float $ns): float => round($ns, 1), $results),
    ], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES) . "\n");
}
