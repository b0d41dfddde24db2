<?php
// One binding path run N times, for benches/instructions/run.sh (see py_driver.py).
//   php -d ffi.enable=1 php_driver.php PATH STORE KEYFILE N
// PATH: psr15-noauth / psr15 (Keyward\Middleware, scope "read", nyholm/psr7 requests) /
// psr15-stacked (two middlewares) / guard (Keyward\Guard::check(['read']) on a $_SERVER-like
// array, as a plain script under PHP-FPM) / fpm-first (the same with a new Store object per
// request, from Store::persistent(), as each PHP-FPM request makes one) / verify ($store->verify($key, ['read'])) /
// verify-headers ($store->verifyHeaders([['x-api-key', $key]], ['read'])).
// fpm-noauth: the loop of guard and fpm-first alone (a new $_SERVER per request).
// With the keyward_native extension loaded (php -d extension=..., run.sh php-ext) the same
// paths verify through it, as the binding does wherever the extension is loaded.
declare(strict_types=1);

require dirname(__DIR__, 2) . '/bindings/php/tests/autoload.php';

use Keyward\Guard;
use Keyward\Middleware;
use Keyward\Store;
use Nyholm\Psr7\Factory\Psr17Factory;
use Nyholm\Psr7\ServerRequest;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Server\MiddlewareInterface;
use Psr\Http\Server\RequestHandlerInterface;

[, $path, $storePath, $keyFile, $n] = $argv;
$n = (int) $n;
$keys = array_values(array_filter(explode("\n", (string) file_get_contents($keyFile))));
$store = Store::open($storePath, flushIntervalMs: Keyward\Abi::KW_FLUSH_MANUAL);
$psr17 = new Psr17Factory();
$served = 0;

final class Ok implements RequestHandlerInterface
{
    public function __construct(private readonly Psr17Factory $f, private int &$served)
    {
    }

    public function handle(ServerRequestInterface $request): ResponseInterface
    {
        $this->served++;
        return $this->f->createResponse(200);
    }
}

final class Then implements RequestHandlerInterface
{
    public function __construct(private readonly MiddlewareInterface $m, private readonly RequestHandlerInterface $next)
    {
    }

    public function handle(ServerRequestInterface $request): ResponseInterface
    {
        return $this->m->process($request, $this->next);
    }
}

$ok = new Ok($psr17, $served);
$server = static fn (string $key): array => [
    'REQUEST_METHOD' => 'GET', 'REQUEST_URI' => '/keyward', 'SCRIPT_NAME' => '/keyward', 'SERVER_PROTOCOL' => 'HTTP/1.1',
    'HTTP_HOST' => '127.0.0.1:18103', 'HTTP_USER_AGENT' => 'wrk', 'HTTP_ACCEPT' => '*/*', 'HTTP_X_API_KEY' => $key,
    'REMOTE_ADDR' => '127.0.0.1', 'REMOTE_PORT' => '50000', 'REQUEST_TIME_FLOAT' => 1.5, 'REQUEST_TIME' => 1,
];
$request = static fn (string $key): ServerRequestInterface => new ServerRequest('GET', '/keyward',
    ['Host' => '127.0.0.1:18103', 'User-Agent' => 'wrk', 'Accept' => '*/*', 'X-Api-Key' => $key], null, '1.1', $server($key));
$m = count($keys);
switch ($path) {
    case 'psr15-noauth':
        for ($i = 0; $i < $n; $i++) {
            $ok->handle($request($keys[$i % $m]));
        }
        break;
    case 'psr15':
    case 'psr15-stacked':
        $mw = new Middleware($store, $psr17, $psr17, ['read']);
        $handler = $path === 'psr15' ? $ok : new Then(new Middleware($store, $psr17, $psr17, ['read']), $ok);
        for ($i = 0; $i < $n; $i++) {
            if ($mw->process($request($keys[$i % $m]), $handler)->getStatusCode() !== 200) {
                throw new RuntimeException('refused');
            }
        }
        break;
    case 'guard':
        for ($i = 0; $i < $n; $i++) {
            $_SERVER = $server($keys[$i % $m]); // a new request's $_SERVER
            Guard::check(['read'], $store)->valid ? $served++ : throw new RuntimeException('refused');
        }
        break;
    case 'fpm-first':
        // A PHP-FPM request: a new Store object onto the worker's persistent store, its first
        // verify (PHP frees every object at the end of a request).
        for ($i = 0; $i < $n; $i++) {
            $_SERVER = $server($keys[$i % $m]);
            $s = Store::persistent($storePath, flushIntervalMs: Keyward\Abi::KW_FLUSH_MANUAL);
            Guard::check(['read'], $s)->valid ? $served++ : throw new RuntimeException('refused');
            unset($s);
        }
        break;
    case 'fpm-noauth':
        // The loop of guard / fpm-first without keyward: a new $_SERVER per request.
        for ($i = 0; $i < $n; $i++) {
            $_SERVER = $server($keys[$i % $m]);
            $served++;
        }
        break;
    case 'verify':
        for ($i = 0; $i < $n; $i++) {
            $store->verify($keys[$i % $m], ['read'])->valid ? $served++ : throw new RuntimeException('refused');
        }
        break;
    case 'verify-headers':
        for ($i = 0; $i < $n; $i++) {
            $store->verifyHeaders([['x-api-key', $keys[$i % $m]]], ['read'])->valid ? $served++ : throw new RuntimeException('refused');
        }
        break;
    default:
        throw new RuntimeException("unknown path $path");
}
if ($served !== $n) {
    throw new RuntimeException("served $served of $n");
}
$store->close();
