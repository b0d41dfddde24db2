<?php

declare(strict_types=1);

namespace Keyward\Tests\Fpm;

use Keyward\Credits;
use Keyward\Keyward;
use Keyward\Library;
use Keyward\Store;
use PHPUnit\Framework\TestCase;

/**
 * A real PHP-FPM pool: php-fpm runs in the foreground as a child of this test, with its own
 * configuration in a temporary directory (pm = static, 4 workers, a unix socket, the
 * production php.ini: ffi.enable=preload + opcache.preload=preload.php) and is driven over
 * FastCGI with cgi-fcgi, many requests at once. The app is tests/fpm/app/: guard.php
 * (Keyward\Guard::require), psr15.php (Keyward\Middleware), stacked.php (two Middlewares
 * and a Guard on one request), timing.php and status.php.
 *
 * This test process keeps the same store file open (multi-process mode) to create keys and
 * to revoke one while the workers hold it warm in their verify indexes.
 *
 * Two set-ups (subclasses): the master as root with workers as www-data (the usual systemd
 * set-up: opcache.preload_user + ffi.preload), and an unprivileged master (FFI::load() in
 * preload.php).
 */
abstract class PoolTestCase extends TestCase
{
    private const WORKERS = 4;

    /** Whether the master runs as root (workers as www-data); else unprivileged. */
    abstract protected static function rootMaster(): bool;

    /** Short name of the set-up, for file names and messages. */
    abstract protected static function setupName(): string;

    protected static function isRoot(): bool
    {
        return function_exists('posix_geteuid') ? posix_geteuid() === 0 : trim((string) shell_exec('id -u')) === '0';
    }

    private static string $dir;
    private static string $socket;
    private static string $storePath;
    /** @var resource|null */
    private static $fpm = null;
    private static ?Store $store = null;
    /** @var array<string, string> name => full key */
    private static array $keys = [];
    /** @var array<string, array{uses: int, refused: int}> expected usage by key name */
    private static array $expected = [];

    public static function setUpBeforeClass(): void
    {
        if (static::rootMaster() && !self::isRoot()) {
            self::markTestSkipped('the root-master set-up needs root (the unprivileged set-up runs instead)');
        }
        $fpm = self::findFpm();
        $cgi = trim((string) shell_exec('command -v cgi-fcgi 2>/dev/null'));
        if ($fpm === '' || $cgi === '') {
            $missing = 'php-fpm and cgi-fcgi are needed (scripts/test-php.sh installs php-fpm and libfcgi-bin)';
            if (getenv('KEYWARD_REQUIRE_FPM') === '1') {
                self::fail($missing);
            }
            self::markTestSkipped($missing);
        }
        self::$dir = sys_get_temp_dir() . '/keyward-fpm-' . static::setupName() . '-' . getmypid() . '-' . bin2hex(random_bytes(3));
        mkdir(self::$dir, 0700, true);
        self::$socket = self::$dir . '/fpm.sock';
        self::$storePath = self::$dir . '/keys.redb';

        // Keys, created from this (CLI) process.
        self::$store = Store::open(self::$storePath);
        foreach (['valid' => ['read'], 'revoked' => ['read'], 'later' => ['read'], 'timing' => ['read'],
            'stacked' => ['read', 'admin'], 'limited' => ['read', 'admin']] as $name => $scopes) {
            $credits = $name === 'limited' ? new Credits(5) : null;
            self::$keys[$name] = self::$store->create("acct_$name", scopes: $scopes, env: 'live', credits: $credits)->key;
            self::$expected[$name] = ['uses' => 0, 'refused' => 0];
        }
        self::$store->revoke(Keyward::parseKey(self::$keys['revoked'])->id);
        self::$store->flush();

        $package = dirname(__DIR__, 2);
        $lib = Library::configuredPath();
        $root = self::isRoot();
        $worker = 'www-data';
        $ini = [
            'ffi.enable = preload',
            'opcache.enable = 1',
            'opcache.enable_cli = 0',
            "opcache.preload = $package/preload.php",
            'opcache.jit = off',
            'display_errors = stderr',
            'log_errors = 1',
            'error_log = ' . self::$dir . '/php-errors.log',
        ];
        if (static::rootMaster()) {
            // PHP preloads in a child running as opcache.preload_user, where FFI::load() is
            // refused: the headers come from ffi.preload instead.
            file_put_contents(self::$dir . '/keyward.h', Library::preloadHeader($lib));
            $ini[] = "opcache.preload_user = $worker";
            $ini[] = 'ffi.preload = ' . self::$dir . "/keyward.h:$package/keyward-libc.preload.h";
        }
        if (self::extension() !== null) {
            $ini[] = 'extension = ' . self::extension(); // the package's optional extension, as its README loads it
        }
        file_put_contents(self::$dir . '/php.ini', implode("\n", $ini) . "\n");
        $pool = [
            '[global]',
            'pid = ' . self::$dir . '/fpm.pid',
            'error_log = ' . self::$dir . '/fpm.log',
            'daemonize = no',
            'log_level = notice',
            'process_control_timeout = 10s', // SIGQUIT: let workers finish and exit normally
            '',
            '[keyward]',
            'listen = ' . self::$socket,
            'pm = static',
            'pm.max_children = ' . self::WORKERS,
            'clear_env = yes',
            "env[KEYWARD_LIB] = $lib",
            'env[KEYWARD_STORE] = ' . self::$storePath,
            'catch_workers_output = yes',
            'decorate_workers_output = no',
        ];
        if (static::rootMaster()) {
            array_push($pool, "user = $worker", "group = $worker", "listen.owner = $worker");
        }
        file_put_contents(self::$dir . '/php-fpm.conf', implode("\n", $pool) . "\n");
        touch(self::$dir . '/php-errors.log');
        if ($root) {
            // The workers (and an unprivileged master) own the store directory, as in production.
            foreach (array_merge([self::$dir], glob(self::$dir . '/*') ?: []) as $file) {
                chown($file, $worker);
                chgrp($file, $worker);
            }
        }

        $command = [$fpm, '--nodaemonize', '--fpm-config', self::$dir . '/php-fpm.conf', '-c', self::$dir . '/php.ini'];
        if ($root && !static::rootMaster()) {
            $command = array_merge(['setpriv', "--reuid=$worker", "--regid=$worker", '--clear-groups', '--'], $command);
        }
        $log = self::$dir . '/fpm.out';
        self::$fpm = proc_open($command, [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'a'], 2 => ['file', $log, 'a']],
            $pipes, null, ['KEYWARD_LIB' => $lib, 'PATH' => (string) getenv('PATH')]);
        self::assertIsResource(self::$fpm);
        $deadline = microtime(true) + 20;
        while (!file_exists(self::$socket)) {
            if (!proc_get_status(self::$fpm)['running'] || microtime(true) > $deadline) {
                self::fail("php-fpm did not start:\n" . self::logs());
            }
            usleep(20_000);
        }
    }

    public static function tearDownAfterClass(): void
    {
        if (self::$fpm !== null) {
            self::stopPool();
        }
        self::$store?->close();
        self::$store = null;
        if (isset(self::$dir) && is_dir(self::$dir) && getenv('KEYWARD_KEEP_FPM_DIR') !== '1') {
            foreach (glob(self::$dir . '/*') ?: [] as $file) {
                @unlink($file);
            }
            @rmdir(self::$dir);
        }
    }

    private static function findFpm(): string
    {
        foreach (['php-fpm', 'php-fpm' . PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION] as $name) {
            foreach (['', '/usr/sbin/', '/usr/local/sbin/'] as $dir) {
                $path = $dir === '' ? trim((string) shell_exec('command -v ' . escapeshellarg($name) . ' 2>/dev/null')) : $dir . $name;
                if ($path !== '' && is_executable($path)) {
                    return $path;
                }
            }
        }
        return '';
    }

    private static function logs(): string
    {
        $out = '';
        foreach (['fpm.out', 'fpm.log', 'php-errors.log'] as $file) {
            if (is_file(self::$dir . "/$file")) {
                $out .= "--- $file\n" . file_get_contents(self::$dir . "/$file");
            }
        }
        return $out;
    }

    /** Graceful stop (SIGQUIT: workers finish their request and exit normally); waits for it. */
    private static function stopPool(): void
    {
        $status = proc_get_status(self::$fpm);
        if ($status['running']) {
            posix_kill_or_signal($status['pid'], 3);
            $deadline = microtime(true) + 20;
            while (proc_get_status(self::$fpm)['running'] && microtime(true) < $deadline) {
                usleep(20_000);
            }
            if (proc_get_status(self::$fpm)['running']) {
                posix_kill_or_signal($status['pid'], 9);
            }
        }
        proc_close(self::$fpm);
        self::$fpm = null;
    }

    /**
     * Sends requests over FastCGI, all at once (one cgi-fcgi process each), and returns the
     * responses in order: ['status' => int, 'headers' => [lower-case name => value], 'body' => string, 'json' => ?array].
     *
     * @param list<array{0: string, 1?: array<string, string>, 2?: string}> $requests [script, headers, query]
     * @return list<array{status: int, headers: array<string, string>, body: string, json: ?array, pid: int}>
     */
    private static function fetch(array $requests): array
    {
        $running = [];
        foreach ($requests as $i => $request) {
            $env = self::params(...($request + [1 => [], 2 => '']));
            $proc = proc_open(['cgi-fcgi', '-bind', '-connect', self::$socket], [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'],
                2 => ['pipe', 'w']], $pipes, null, $env + ['PATH' => (string) getenv('PATH')]);
            $running[$i] = [$proc, $pipes];
        }
        $responses = [];
        foreach ($running as $i => [$proc, $pipes]) {
            $raw = (string) stream_get_contents($pipes[1]);
            $err = (string) stream_get_contents($pipes[2]);
            $exit = proc_close($proc);
            self::assertSame(0, $exit, "cgi-fcgi failed: $err\n" . self::logs());
            [$head, $body] = explode("\r\n\r\n", $raw, 2) + [1 => ''];
            $headers = [];
            foreach (explode("\r\n", $head) as $line) {
                if (str_contains($line, ':')) {
                    [$name, $value] = explode(':', $line, 2);
                    $headers[strtolower(trim($name))] = trim($value);
                }
            }
            $status = isset($headers['status']) ? (int) $headers['status'] : 200;
            $json = json_decode($body, true);
            $responses[$i] = ['status' => $status, 'headers' => $headers, 'body' => $body, 'json' => is_array($json) ? $json : null,
                'pid' => (int) ($headers['x-worker-pid'] ?? ($json['pid'] ?? 0))];
        }
        return $responses;
    }

    /**
     * The CGI parameters of a GET request for an app script.
     *
     * @param array<string, string> $headers
     * @return array<string, string>
     */
    private static function params(string $script, array $headers = [], string $query = ''): array
    {
        $app = dirname(__DIR__) . '/fpm/app';
        $env = [
            'GATEWAY_INTERFACE' => 'CGI/1.1',
            'SERVER_PROTOCOL' => 'HTTP/1.1',
            'REQUEST_METHOD' => 'GET',
            'SCRIPT_FILENAME' => "$app/$script",
            'SCRIPT_NAME' => "/$script",
            'REQUEST_URI' => "/$script" . ($query === '' ? '' : "?$query"),
            'QUERY_STRING' => $query,
            'DOCUMENT_ROOT' => $app,
            'SERVER_NAME' => 'localhost',
            'REMOTE_ADDR' => '127.0.0.1',
        ];
        foreach ($headers as $name => $value) {
            $env['HTTP_' . strtoupper(str_replace('-', '_', $name))] = $value;
        }
        return $env;
    }

    private function tally(string $key, array $response): void
    {
        if ($response['status'] === 200) {
            self::$expected[$key]['uses']++;
        } elseif (in_array($response['json']['code'] ?? '', ['REVOKED', 'INSUFFICIENT_SCOPE', 'EXPIRED', 'USAGE_EXCEEDED'], true)) {
            self::$expected[$key]['refused']++;
        }
    }

    /** KEYWARD_PHP_EXTENSION: the keyward_native module the pools load (scripts/test-php.sh), else none. */
    private static function extension(): ?string
    {
        $path = getenv('KEYWARD_PHP_EXTENSION');
        return is_string($path) && $path !== '' ? $path : null;
    }

    public function testThePoolRunsTheProductionConfiguration(): void
    {
        $pids = [];
        $handles = [];
        for ($round = 0; $round < 10 && count($pids) < self::WORKERS; $round++) {
            foreach (self::fetch(array_fill(0, 12, ['status.php'])) as $r) {
                self::assertSame(200, $r['status'], $r['body'] . self::logs());
                $s = $r['json'];
                self::assertSame('the FFI scope "KEYWARD" created by opcache.preload', $s['source'], 'the library comes from preload');
                self::assertSame('preload', $s['ffi_enable']);
                self::assertContains('Keyward\Store', $s['preloaded_classes']);
                self::assertSame(count(self::$keys), $s['indexed_keys']);
                if (self::extension() !== null) {
                    self::assertNotSame(0, $s['extension_verify'], 'the worker verifies through keyward_native');
                } else {
                    self::assertSame(0, $s['extension_verify'], 'no extension: FFI');
                }
                $pids[$s['pid']] = true;
                $handles[$s['pid']][$s['handle']] = true;
            }
        }
        self::assertCount(self::WORKERS, $pids, 'every worker answered');
        foreach ($handles as $pid => $seen) {
            self::assertCount(1, $seen, "worker $pid kept one store handle across its requests");
        }
    }

    public function testVerdictsThroughGuardAndMiddleware(): void
    {
        $valid = self::$keys['valid'];
        $cases = [
            // [script, headers, query, status, code]
            ['guard.php', ['X-Api-Key' => $valid], 'scopes=read', 200, null],
            ['guard.php', ['Authorization' => "Bearer $valid"], '', 200, null],
            ['guard.php', ['Authorization' => 'Basic ' . base64_encode("$valid:")], 'scopes=read', 200, null],
            ['guard.php', ['X-Api-Key' => self::$keys['revoked']], 'scopes=read', 401, 'REVOKED'],
            ['guard.php', ['X-Api-Key' => $valid], 'scopes=read,admin', 403, 'INSUFFICIENT_SCOPE'],
            ['guard.php', [], 'scopes=read', 401, 'CREDENTIAL_MISSING'],
            ['guard.php', ['X-Api-Key' => 'kw_live_nonsense'], '', 401, 'MALFORMED'],
            ['psr15.php', ['X-Api-Key' => $valid], 'scopes=read', 200, null],
            ['psr15.php', ['X-Api-Key' => self::$keys['revoked']], '', 401, 'REVOKED'],
            ['psr15.php', ['Authorization' => "Bearer $valid"], 'scopes=admin', 403, 'INSUFFICIENT_SCOPE'],
            ['psr15.php', [], '', 401, 'CREDENTIAL_MISSING'],
        ];
        $requests = [];
        foreach (array_merge($cases, $cases, $cases) as $case) {
            $requests[] = [$case[0], $case[1], $case[2]];
        }
        $responses = self::fetch($requests);
        $acceptedShapes = [];
        foreach (array_merge($cases, $cases, $cases) as $i => [$script, $headers, $query, $status, $code]) {
            $r = $responses[$i];
            $what = "$script?$query " . implode(',', array_keys($headers)) . ": {$r['body']}";
            self::assertSame($status, $r['status'], $what . self::logs());
            self::assertSame('application/json', $r['headers']['content-type'] ?? null, $what);
            if ($status === 200) {
                self::assertSame(['ok' => true, 'owner' => 'acct_valid'], array_intersect_key($r['json'], ['ok' => 1, 'owner' => 1]), $what);
                if ($script === 'guard.php') {
                    // After its first Guard check a worker checks in one keyward_native call.
                    self::assertSame(self::extension() !== null, $r['json']['guard_native'], $what);
                    // The entry left for later checks: Guard's PHP path keeps the store and the
                    // headers; the extension's path (a bound worker) leaves them to be filled in.
                    $shape = $r['json']['accepted'];
                    $acceptedShapes[$shape['store'] ?? '?'] = true;
                    self::assertContains($shape, [
                        ['store' => 'Keyward\Store', 'verdict' => 'Keyward\Verdict', 'scopes' => 'array', 'keyScopes' => 'null',
                            'headers' => 'array', 'time' => 'float'],
                        ['store' => 'null', 'verdict' => 'Keyward\Verdict', 'scopes' => 'array', 'keyScopes' => 'null',
                            'headers' => 'null', 'time' => 'float'],
                    ], $what);
                }
            } else {
                self::assertSame(['ok', 'code', 'message'], array_keys($r['json']), $what);
                self::assertFalse($r['json']['ok'], $what);
                self::assertSame($code, $r['json']['code'], $what);
                self::assertNotSame('', $r['json']['message'], $what);
                self::assertArrayHasKey('www-authenticate', $r['headers'], $what);
            }
            if (($headers['X-Api-Key'] ?? '') === self::$keys['revoked']) {
                $this->tally('revoked', $r);
            } elseif ($headers !== [] && $code !== 'MALFORMED') {
                $this->tally('valid', $r);
            }
        }
        if (self::extension() !== null) {
            self::assertArrayHasKey('null', $acceptedShapes, 'some accepted request went through the extension alone');
        }
    }

    /**
     * Two middlewares in a PSR-15 pipeline and Guard::require() in the handler (stacked.php):
     * each request is verified once, by the first middleware. Counted exactly by
     * testUseCountsAreExactAfterThePoolStops (the expected counts below: one use per accepted
     * request, whatever the later layers do; a refusal by a later layer adds nothing).
     */
    public function testStackedMiddlewaresAndGuardVerifyARequestOnce(): void
    {
        $cases = [
            // [key name, query, status, code]
            ['stacked', 'inner=read&guard=admin', 200, null],
            ['stacked', 'inner=admin&guard=read,admin', 200, null],
            ['valid', 'inner=read&guard=read', 200, null],
            ['valid', 'inner=read&guard=admin', 403, 'INSUFFICIENT_SCOPE'],    // refused by the Guard
            ['valid', 'inner=admin', 403, 'INSUFFICIENT_SCOPE'],               // refused by the second middleware
            ['revoked', 'inner=read&guard=read', 401, 'REVOKED'],              // refused by the first middleware
        ];
        $all = array_merge($cases, $cases, $cases);
        $responses = self::fetch(array_map(fn (array $c): array => ['stacked.php', ['X-Api-Key' => self::$keys[$c[0]]], $c[1]], $all));
        foreach ($all as $i => [$name, $query, $status, $code]) {
            $r = $responses[$i];
            $what = "stacked.php?$query ($name): {$r['body']}";
            self::assertSame($status, $r['status'], $what . self::logs());
            if ($status === 200) {
                self::assertSame(['ok' => true, 'owner' => "acct_$name", 'same_verdict' => true],
                    array_intersect_key($r['json'], ['ok' => 1, 'owner' => 1, 'same_verdict' => 1]), $what);
            } else {
                self::assertSame($code, $r['json']['code'] ?? null, $what);
                self::assertSame('application/json', $r['headers']['content-type'] ?? null, $what);
            }
            if ($status === 401) {
                self::$expected[$name]['refused']++;
            } else {
                self::$expected[$name]['uses']++; // the first middleware accepted it
            }
        }

        // Guard::require() twice in one request (guard.php?then=): the second reuses the first's
        // verdict (the same object), counts nothing, and refuses a scope the key lacks.
        $twice = [['scopes=read&then=read', 200], ['scopes=read&then=admin', 403], ['then=read', 200]];
        $all = array_merge($twice, $twice, $twice);
        $responses = self::fetch(array_map(fn (array $c): array => ['guard.php', ['X-Api-Key' => self::$keys['valid']], $c[0]], $all));
        foreach ($all as $i => [$query, $status]) {
            $r = $responses[$i];
            $what = "guard.php?$query: {$r['body']}";
            self::assertSame($status, $r['status'], $what . self::logs());
            if ($status === 200) {
                self::assertTrue($r['json']['same_verdict'], $what);
            } else {
                self::assertSame('INSUFFICIENT_SCOPE', $r['json']['code'] ?? null, $what);
            }
            self::$expected['valid']['uses']++; // the first check accepted it
        }

        // A limited key (5 credits) through the three layers: 5 requests accepted, the 6th
        // USAGE_EXCEEDED (one credit per request, sent all at once).
        $responses = self::fetch(array_fill(0, 6, ['stacked.php', ['X-Api-Key' => self::$keys['limited']], 'inner=read&guard=admin']));
        $statuses = array_column($responses, 'status');
        sort($statuses);
        self::assertSame([200, 200, 200, 200, 200, 403], $statuses, implode("\n", array_column($responses, 'body')));
        foreach ($responses as $r) {
            if ($r['status'] === 403) {
                self::assertSame('USAGE_EXCEEDED', $r['json']['code']);
            }
        }
        self::assertSame(0, self::$store->credits(Keyward::parseKey(self::$keys['limited'])->id)->remaining);
        self::$expected['limited'] = ['uses' => 5, 'refused' => 1];
    }

    public function testARevokeIsSeenByEveryWorkerOnItsNextRequest(): void
    {
        $key = self::$keys['later'];
        $request = ['guard.php', ['X-Api-Key' => $key], 'scopes=read&sleep_ms=60'];
        // Every worker accepts the key first: it is warm in all four verify indexes.
        $accepted = [];
        for ($round = 0; $round < 20 && count($accepted) < self::WORKERS; $round++) {
            foreach (self::fetch(array_fill(0, 2 * self::WORKERS, $request)) as $r) {
                self::assertSame(200, $r['status'], $r['body']);
                $this->tally('later', $r);
                $accepted[$r['pid']] = true;
            }
        }
        self::assertCount(self::WORKERS, $accepted, 'every worker accepted the key before the revoke');

        // Revoked by another process (this one), while the workers stay up.
        self::$store->revoke(Keyward::parseKey($key)->id, 'fpm test');

        $refused = [];
        for ($round = 0; $round < 20 && count($refused) < self::WORKERS; $round++) {
            foreach (self::fetch(array_fill(0, 2 * self::WORKERS, ['guard.php', ['X-Api-Key' => $key], 'scopes=read'])) as $r) {
                self::assertSame(401, $r['status'], "worker {$r['pid']} still accepted the revoked key: {$r['body']}");
                self::assertSame('REVOKED', $r['json']['code']);
                $this->tally('later', $r);
                $refused[$r['pid']] = true;
            }
        }
        self::assertEqualsCanonicalizing(array_keys($accepted), array_keys($refused), 'every worker refused it');
    }

    /**
     * What a warm request pays to get the worker's store and verify one key. Recorded for
     * BENCHMARKS.md (PHP) (no timing assertion: the figures depend on the machine and on
     * the build of the library; scripts/test-php.sh --bench runs this with a release build).
     */
    public function testPerRequestCostOfOpeningTheStoreAndVerifying(): void
    {
        $samples = [];
        foreach (['key', 'server'] as $mode) {
            // One request at a time, back to back, with an in-process FastCGI client: no
            // process is spawned per request (that would disturb what is measured).
            $params = self::params('timing.php', ['X-Api-Key' => self::$keys['timing']], "mode=$mode");
            for ($round = 0; $round < 220; $round++) {
                $raw = FastCgi::request(self::$socket, $params);
                [, $body] = explode("\r\n\r\n", $raw, 2) + [1 => ''];
                $json = json_decode($body, true);
                self::assertIsArray($json, $raw);
                foreach ([['status' => str_contains($raw, 'Status:') ? 500 : 200, 'json' => $json, 'body' => $body]] as $r) {
                    self::assertSame(200, $r['status'], $r['body']);
                    self::assertSame('VALID', $r['json']['code']);
                    self::$expected['timing']['uses'] += 2;
                    if (!$r['json']['cold']) {
                        $samples[$mode][] = $r['json']['ns'];
                        $samples["$mode: open"][] = $r['json']['open_ns'];
                        $samples["$mode: first verify"][] = $r['json']['verify_ns'];
                        $samples["$mode: second verify"][] = $r['json']['second_verify_ns'];
                    }
                }
            }
        }
        $summary = [];
        foreach ($samples as $mode => $ns) {
            self::assertGreaterThan(150, count($ns), $mode);
            sort($ns);
            $summary[$mode] = [
                'requests' => count($ns),
                'median_us' => round($ns[intdiv(count($ns), 2)] / 1000, 2),
                'p90_us' => round($ns[(int) floor(count($ns) * 0.9)] / 1000, 2),
                'min_us' => round($ns[0] / 1000, 2),
            ];
        }
        $summary['library'] = Library::configuredPath();
        $summary['workers'] = self::WORKERS;
        $summary['setup'] = static::setupName();
        $out = getenv('KEYWARD_FPM_TIMING_DIR');
        if (is_string($out) && $out !== '') {
            file_put_contents("$out/fpm-timing-" . static::setupName() . '.json',
                json_encode($summary, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES) . "\n");
        }
        self::assertGreaterThan(0, $summary['key']['median_us']);
    }

    /**
     * Usage counts are exact once the pool has stopped: a graceful stop (SIGQUIT) right after
     * the last request, no waiting for the 1 s background flush. Each worker closes its
     * persistent store when it exits, which flushes what it counted.
     */
    public function testUseCountsAreExactAfterThePoolStops(): void
    {
        self::assertGreaterThan(0, self::$expected['valid']['uses']);
        self::stopPool();
        self::assertStringNotContainsString('WARNING', (string) @file_get_contents(self::$dir . '/fpm.log'), self::logs());
        foreach (self::$expected as $name => $expected) {
            $usage = self::$store->usage(Keyward::parseKey(self::$keys[$name])->id);
            self::assertSame($expected, ['uses' => $usage->uses, 'refused' => $usage->refused], "usage of the '$name' key");
        }
    }
}

/** Sends a signal with ext-posix when present, else kill(1). */
function posix_kill_or_signal(int $pid, int $signal): void
{
    if (function_exists('posix_kill')) {
        posix_kill($pid, $signal);
        return;
    }
    exec(sprintf('kill -%d %d', $signal, $pid));
}
