<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use Keyward\Credentials;
use Keyward\Credits;
use Keyward\Guard;
use Keyward\Keyward;
use Keyward\Middleware;
use Keyward\Store;
use Keyward\Tests\TempStores;
use Keyward\Verdict;
use Nyholm\Psr7\Factory\Psr17Factory;
use Nyholm\Psr7\ServerRequest;
use PHPUnit\Framework\TestCase;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Server\MiddlewareInterface;
use Psr\Http\Server\RequestHandlerInterface;

/**
 * The PSR-15 middleware against the published PSR-7/15/17 interfaces (nyholm/psr7 as the
 * message implementation), and credential extraction from PSR-7 requests.
 */
final class MiddlewareTest extends TestCase
{
    use TempStores;

    private static Store $store;
    private static string $key;
    private static string $revoked;
    private Psr17Factory $psr17;

    public static function setUpBeforeClass(): void
    {
        self::$store = self::newStore('middleware');
        self::$key = self::$store->create('acct_9', scopes: ['read'])->key;
        $revoked = self::$store->create('acct_9');
        self::$store->revoke($revoked->id());
        self::$revoked = $revoked->key;
    }

    public static function tearDownAfterClass(): void
    {
        self::$store->close();
    }

    protected function setUp(): void
    {
        if (!class_exists(Psr17Factory::class)) {
            self::markTestSkipped('nyholm/psr7 is not installed (scripts/test-php.sh installs php-nyholm-psr7)');
        }
        $this->psr17 = new Psr17Factory();
    }

    /** A handler answering 200 with the verdict's owner; records what it received. */
    private function handler(?ServerRequestInterface &$seen = null): RequestHandlerInterface
    {
        return new class ($this->psr17, $seen) implements RequestHandlerInterface {
            public function __construct(private Psr17Factory $psr17, private ?ServerRequestInterface &$seen)
            {
            }

            public function handle(ServerRequestInterface $request): ResponseInterface
            {
                $this->seen = $request;
                $verdict = $request->getAttribute(Middleware::ATTRIBUTE);
                return $this->psr17->createResponse(200)->withBody($this->psr17->createStream('hello ' . $verdict->owner()));
            }
        };
    }

    private function request(array $headers): ServerRequestInterface
    {
        return new ServerRequest('GET', '/invoices', $headers);
    }

    /** @return array{ok: bool, code: string, message: string} */
    private static function body(ResponseInterface $response): array
    {
        return json_decode((string) $response->getBody(), true, 8, JSON_THROW_ON_ERROR);
    }

    public function testItIsAPsr15Middleware(): void
    {
        self::assertInstanceOf(MiddlewareInterface::class, new Middleware(self::$store, $this->psr17, $this->psr17));
    }

    public function testAValidKeyPassesWithTheVerdictAttribute(): void
    {
        $middleware = new Middleware(self::$store, $this->psr17, $this->psr17, ['read']);
        $seen = null;
        $response = $middleware->process($this->request(['Authorization' => 'Bearer ' . self::$key]), $this->handler($seen));
        self::assertSame(200, $response->getStatusCode());
        self::assertSame('hello acct_9', (string) $response->getBody());
        $verdict = $seen->getAttribute('keyward.verdict');
        self::assertInstanceOf(Verdict::class, $verdict);
        self::assertTrue($verdict->valid);
        self::assertSame('acct_9', $verdict->owner());
    }

    public function testRefusalsAreJson401And403(): void
    {
        $middleware = new Middleware(self::$store, $this->psr17, $this->psr17, ['read']);
        $cases = [
            'no key' => [[], 401, 'CREDENTIAL_MISSING', 'no API key in the request'],
            'garbage' => [['x-api-key' => 'nope'], 401, 'MALFORMED', 'the API key is malformed'],
            'revoked' => [['x-api-key' => self::$revoked], 401, 'REVOKED', 'the API key has been revoked'],
            'unsupported scheme' => [['Authorization' => 'Digest abc'], 401, 'UNSUPPORTED_SCHEME', null],
            'half a pair' => [['X-Api-Token-Id' => 'abc'], 401, 'HALF_PAIR', null],
            'missing scope' => [['x-api-key' => self::$key], 403, 'INSUFFICIENT_SCOPE', 'the API key lacks a scope this route requires'],
        ];
        foreach ($cases as $name => [$headers, $status, $code, $message]) {
            $mw = $name === 'missing scope' ? $middleware->requiring('admin') : $middleware;
            $called = false;
            $handler = new class ($called) implements RequestHandlerInterface {
                public function __construct(private bool &$called)
                {
                }

                public function handle(ServerRequestInterface $request): ResponseInterface
                {
                    $this->called = true;
                    throw new \LogicException('must not be reached');
                }
            };
            $response = $mw->process($this->request($headers), $handler);
            self::assertFalse($called, $name);
            self::assertSame($status, $response->getStatusCode(), $name);
            self::assertSame('application/json', $response->getHeaderLine('Content-Type'), $name);
            self::assertSame('no-store', $response->getHeaderLine('Cache-Control'), $name);
            $body = self::body($response);
            self::assertSame(['ok', 'code', 'message'], array_keys($body), $name);
            self::assertFalse($body['ok'], $name);
            self::assertSame($code, $body['code'], $name);
            if ($message !== null) {
                self::assertSame($message, $body['message'], $name);
            }
            self::assertSame($status === 401 ? 'Bearer' : 'Bearer error="insufficient_scope"', $response->getHeaderLine('WWW-Authenticate'), $name);
        }
    }

    public function testASuspendedOwnerIsAnswered403(): void
    {
        $middleware = new Middleware(self::$store, $this->psr17, $this->psr17);
        $key = self::$store->create('acct_suspended')->key;
        self::assertSame(200, $middleware->process($this->request(['x-api-key' => $key]), $this->handler())->getStatusCode());
        self::$store->suspendOwner('acct_suspended');
        try {
            $response = $middleware->process($this->request(['x-api-key' => $key]), $this->handler());
            self::assertSame(403, $response->getStatusCode());
            $body = self::body($response);
            self::assertSame('OWNER_SUSPENDED', $body['code']);
            self::assertSame('the account that owns the API key is suspended', $body['message']);
        } finally {
            self::$store->resumeOwner('acct_suspended');
        }
        self::assertSame(200, $middleware->process($this->request(['x-api-key' => $key]), $this->handler())->getStatusCode());
    }

    /** Issue 19: a rate-limited key's fields on the way through, then 429 with Retry-After. */
    public function testRateLimitedKeysGetTheIetfFieldsAnd429(): void
    {
        $created = self::$store->create('acct_rl', rateLimit: new \Keyward\RateLimit(2, 60000));
        self::assertEquals(new \Keyward\RateLimit(2, 60000, 2), $created->record->rateLimit);
        $middleware = new Middleware(self::$store, $this->psr17, $this->psr17);
        $response = $middleware->process($this->request(['x-api-key' => $created->key]), $this->handler());
        self::assertSame(200, $response->getStatusCode());
        self::assertSame('"key";q=2;w=60', $response->getHeaderLine('RateLimit-Policy'));
        self::assertSame('"key";r=1;t=30', $response->getHeaderLine('RateLimit'));
        self::assertFalse($response->hasHeader('Retry-After'));
        self::assertSame(200, $middleware->process($this->request(['x-api-key' => $created->key]), $this->handler())->getStatusCode());
        $response = $middleware->process($this->request(['x-api-key' => $created->key]), $this->handler());
        self::assertSame(429, $response->getStatusCode());
        self::assertSame('RATE_LIMITED', self::body($response)['code']);
        $retry = (int) $response->getHeaderLine('Retry-After');
        self::assertTrue($retry >= 1 && $retry <= 30, "Retry-After $retry");
        // A key without a limit gets none of the fields; an owner limit applies to it.
        $plain = self::$store->create('acct_rp');
        self::assertFalse($middleware->process($this->request(['x-api-key' => $plain->key]), $this->handler())->hasHeader('RateLimit'));
        self::$store->setOwnerRateLimit('acct_rp', new \Keyward\RateLimit(1, 1000, 1));
        self::assertEquals(new \Keyward\RateLimit(1, 1000, 1), self::$store->ownerRateLimit('acct_rp'));
        $response = $middleware->process($this->request(['x-api-key' => $plain->key]), $this->handler());
        self::assertSame('"owner";q=1;w=1', $response->getHeaderLine('RateLimit-Policy'));
        self::assertSame(429, $middleware->process($this->request(['x-api-key' => $plain->key]), $this->handler())->getStatusCode());
        self::$store->setOwnerRateLimit('acct_rp', null);
        self::assertNull(self::$store->ownerRateLimit('acct_rp'));
        // The verdict API, update and dry run.
        $v = self::$store->verify($created->key);
        self::assertSame(429, $v->httpStatus);
        self::assertGreaterThan(0, $v->retryAfterMs());
        self::assertSame('key', $v->rate()['scope']);
        self::assertSame('RATE_LIMITED', self::$store->verify($created->key, dryRun: true)->code);
        self::assertNull(self::$store->update($created->record->id, name: 'n', rateLimit: false)->rateLimit);
        self::assertTrue(self::$store->verify($created->key)->valid);
    }

    public function testStoreClosureScopesForAndAttributeName(): void
    {
        $opened = 0;
        $middleware = new Middleware(function () use (&$opened): Store {
            $opened++;
            return self::$store;
        }, $this->psr17, $this->psr17, attribute: 'apiKey', scopesFor: fn (ServerRequestInterface $r): array =>
            $r->getMethod() === 'DELETE' ? ['admin'] : ['read']);
        $seen = null;
        $ok = $middleware->process($this->request(['x-api-key' => self::$key]), $this->handler2($seen));
        self::assertSame(200, $ok->getStatusCode());
        self::assertSame('acct_9', $seen->getAttribute('apiKey')->owner());
        $denied = $middleware->process(new ServerRequest('DELETE', '/invoices/1', ['x-api-key' => self::$key]), $this->handler2($seen));
        self::assertSame(403, $denied->getStatusCode());
        self::assertSame(2, $opened, 'the closure is called per request');
    }

    private function handler2(?ServerRequestInterface &$seen): RequestHandlerInterface
    {
        return new class ($this->psr17, $seen) implements RequestHandlerInterface {
            public function __construct(private Psr17Factory $psr17, private ?ServerRequestInterface &$seen)
            {
            }

            public function handle(ServerRequestInterface $request): ResponseInterface
            {
                $this->seen = $request;
                return $this->psr17->createResponse(200);
            }
        };
    }

    public function testCredentialsFromAPsr7Request(): void
    {
        $request = $this->request([
            'Accept' => '*/*',
            'X-API-KEY' => ['one', 'two'],
            'Authorization' => 'Bearer x',
            'X-Api-Token-Id' => 'id',
            'X-Api-Token-Secret-Key' => 'secret',
            'Cookie' => 'a=b',
        ]);
        self::assertSame([
            ['x-api-key', 'one'], ['x-api-key', 'two'], ['authorization', 'Bearer x'],
            ['x-api-token-id', 'id'], ['x-api-token-secret-key', 'secret'],
        ], Credentials::fromRequest($request));
        self::assertSame([], Credentials::fromRequest($this->request(['Accept' => '*/*'])));
        self::assertTrue(self::$store->verifyRequest($this->request(['X-Api-Key' => self::$key]), ['read'])->valid);
    }

    public function testCredentialsFromServer(): void
    {
        self::assertSame([['x-api-key', 'k'], ['authorization', 'Bearer t']],
            Credentials::fromServer(['HTTP_X_API_KEY' => 'k', 'HTTP_AUTHORIZATION' => 'Bearer t', 'PHP_AUTH_USER' => 'u', 'HTTP_ACCEPT' => '*/*']));
        self::assertSame([['authorization', 'Basic ' . base64_encode('u:p')]],
            Credentials::fromServer(['PHP_AUTH_USER' => 'u', 'PHP_AUTH_PW' => 'p']));
        self::assertSame([['authorization', 'Bearer r']], Credentials::fromServer(['REDIRECT_HTTP_AUTHORIZATION' => 'Bearer r']));
        self::assertSame([], Credentials::fromServer(['HTTP_X_API_KEY' => ['not', 'a string']]));
    }

    // --- stacked middlewares: one verify per request -------------------------------------------
    //
    // Today's single middleware, for the record: a request it accepts counts one use (and
    // spends the key's cost on a limited key); a request refused for a missing scope counts no
    // use and one refusal, and spends nothing (the library checks scopes before credits).

    /** [uses, refused] of a key after flushing the pending counts. */
    private static function counts(Store $store, string $key): array
    {
        $store->flush();
        $usage = $store->usage(Keyward::parseKey($key)->id);
        return [$usage->uses, $usage->refused];
    }

    /**
     * A PSR-15 pipeline: the middlewares in order (the first is the outermost), then a handler
     * answering 200 with the verdict's owner and its attribute's key id.
     *
     * @param list<MiddlewareInterface> $middlewares
     */
    private function pipeline(array $middlewares, string $attribute = Middleware::ATTRIBUTE): RequestHandlerInterface
    {
        $handler = new class ($this->psr17, $attribute) implements RequestHandlerInterface {
            public function __construct(private Psr17Factory $psr17, private string $attribute)
            {
            }

            public function handle(ServerRequestInterface $request): ResponseInterface
            {
                $verdict = $request->getAttribute($this->attribute);
                return $this->psr17->createResponse(200)->withBody($this->psr17->createStream((string) $verdict->owner()));
            }
        };
        foreach (array_reverse($middlewares) as $middleware) {
            $handler = new class ($middleware, $handler) implements RequestHandlerInterface {
                public function __construct(private MiddlewareInterface $middleware, private RequestHandlerInterface $next)
                {
                }

                public function handle(ServerRequestInterface $request): ResponseInterface
                {
                    return $this->middleware->process($request, $this->next);
                }
            };
        }
        return $handler;
    }

    public function testStackedMiddlewaresCountOneUsePerRequest(): void
    {
        $store = self::newStore('stacked');
        $key = $store->create('acct_s', scopes: ['read', 'admin'])->key;
        $any = new Middleware($store, $this->psr17, $this->psr17);
        $app = $this->pipeline([
            $any,
            $any->requiring('read'),
            new Middleware(fn (): Store => $store, $this->psr17, $this->psr17, attribute: 'apiKey',
                scopesFor: fn (ServerRequestInterface $r): array => ['admin']),
        ], 'apiKey');
        for ($i = 0; $i < 5; $i++) {
            $response = $app->handle($this->request(['x-api-key' => $key]));
            self::assertSame([200, 'acct_s'], [$response->getStatusCode(), (string) $response->getBody()]);
        }
        self::assertSame([5, 0], self::counts($store, $key));
    }

    public function testStackedMiddlewaresSpendOneCreditPerRequest(): void
    {
        $store = self::newStore('stacked-credits');
        $created = $store->create('acct_l', scopes: ['read', 'admin'], credits: new Credits(5));
        $any = new Middleware($store, $this->psr17, $this->psr17);
        $app = $this->pipeline([$any, $any->requiring('read'), $any->requiring('admin')]);
        $statuses = [];
        for ($i = 0; $i < 6; $i++) {
            $response = $app->handle($this->request(['x-api-key' => $created->key]));
            $statuses[] = $response->getStatusCode();
        }
        self::assertSame([200, 200, 200, 200, 200, 403], $statuses);
        self::assertSame('USAGE_EXCEEDED', self::body($response)['code']);
        self::assertSame(0, $store->credits($created->id())->remaining);
        self::assertSame([5, 1], self::counts($store, $created->key), 'the 6th: refused once, by the first middleware');
    }

    public function testStackedRouteWithAMissingScopeAnswersAsTheSingleMiddleware(): void
    {
        $store = self::newStore('stacked-scope');
        $reader = $store->create('acct_r', scopes: ['read'])->key;
        $admin = $store->create('acct_a', scopes: ['read', 'admin'])->key;
        $any = new Middleware($store, $this->psr17, $this->psr17);
        // The route alone behind one middleware: 403, no use, one refusal (unchanged).
        $single = $this->pipeline([$any->requiring('admin')])->handle($this->request(['x-api-key' => $reader]));
        self::assertSame([403, 'INSUFFICIENT_SCOPE'], [$single->getStatusCode(), self::body($single)['code']]);
        self::assertSame([0, 1], self::counts($store, $reader));
        // Stacked: the outer middleware accepted the key (one use, as it would alone); the
        // inner one refuses it with the same answer and counts nothing more.
        $stacked = $this->pipeline([$any, $any->requiring('admin')]);
        $response = $stacked->handle($this->request(['x-api-key' => $reader]));
        self::assertSame($single->getStatusCode(), $response->getStatusCode());
        self::assertSame((string) $single->getBody(), (string) $response->getBody());
        self::assertSame($single->getHeaders(), $response->getHeaders());
        self::assertSame([1, 1], self::counts($store, $reader));
        self::assertSame(200, $stacked->handle($this->request(['x-api-key' => $admin]))->getStatusCode());
        self::assertSame([1, 0], self::counts($store, $admin));
    }

    public function testAStackedRefusalStopsAtTheFirstMiddleware(): void
    {
        $store = self::newStore('stacked-refused');
        $revoked = $store->create('acct_x', scopes: ['admin']);
        $store->revoke($revoked->id());
        $reached = 0;
        $spy = new class ($reached) implements MiddlewareInterface {
            public function __construct(private int &$reached)
            {
            }

            public function process(ServerRequestInterface $request, RequestHandlerInterface $handler): ResponseInterface
            {
                $this->reached++;
                return $handler->handle($request);
            }
        };
        $any = new Middleware($store, $this->psr17, $this->psr17);
        $app = $this->pipeline([$any, $spy, $any->requiring('admin')]);
        self::assertSame(401, $app->handle($this->request(['x-api-key' => $revoked->key]))->getStatusCode());
        self::assertSame('CREDENTIAL_MISSING', self::body($app->handle($this->request([])))['code']);
        self::assertSame(0, $reached);
        self::assertSame([0, 1], self::counts($store, $revoked->key));
    }

    public function testAMiddlewareOnAnotherStoreVerifiesTheRequestItself(): void
    {
        $store = self::newStore('stacked-a');
        $other = self::newStore('stacked-b');
        $key = $store->create('acct_r', scopes: ['read'])->key;
        $app = $this->pipeline([new Middleware($store, $this->psr17, $this->psr17), new Middleware($other, $this->psr17, $this->psr17)]);
        $response = $app->handle($this->request(['x-api-key' => $key]));
        self::assertSame([401, 'NOT_FOUND'], [$response->getStatusCode(), self::body($response)['code']]);
        self::assertSame([1, 0], self::counts($store, $key), "the first middleware's use");
        // A second handle onto the same store is the same store: its verdict is reused.
        $same = Store::open($store->path());
        $app = $this->pipeline([new Middleware($store, $this->psr17, $this->psr17), new Middleware($same, $this->psr17, $this->psr17, ['read'])]);
        self::assertSame(200, $app->handle($this->request(['x-api-key' => $key]))->getStatusCode());
        self::assertSame([2, 0], self::counts($store, $key));
        $same->close();
    }

    /**
     * The CLI SAPI's $_SERVER outlives requests (RoadRunner, Swoole, ReactPHP run there), so
     * the Guard does not take a verdict from it: after the middleware it verifies again. Under
     * PHP-FPM it reuses the middleware's verdict (tests/Fpm: testStackedMiddlewaresAndGuard...).
     */
    public function testUnderTheCliTheGuardDoesNotTrustServerGlobals(): void
    {
        self::assertSame('cli', PHP_SAPI);
        $store = self::newStore('stacked-cli');
        $key = $store->create('acct_c', scopes: ['read'])->key;
        $server = ['HTTP_X_API_KEY' => $key];
        $guard = new class ($store, $server, $this->psr17) implements RequestHandlerInterface {
            public function __construct(private Store $store, private array $server, private Psr17Factory $psr17)
            {
            }

            public function handle(ServerRequestInterface $request): ResponseInterface
            {
                $verdict = Guard::check(['read'], $this->store, $this->server);
                return $this->psr17->createResponse($verdict->httpStatus);
            }
        };
        $response = (new Middleware($store, $this->psr17, $this->psr17))->process($this->request(['x-api-key' => $key]), $guard);
        self::assertSame(200, $response->getStatusCode());
        self::assertArrayNotHasKey(Guard::ACCEPTED, $_SERVER);
        self::assertSame([2, 0], self::counts($store, $key));
    }
}
